//! Catalog tables weir has no rows for, with PostgreSQL's columns and
//! types: transforms, security labels, event triggers, row-security
//! policies, foreign data wrappers and servers, default privileges,
//! publications and rewrite rules do not exist in weir.
//! `datafusion-pg-catalog` lacks `pg_transform` and `pg_seclabel(s)`,
//! holds the array columns of the others (`evttags`, `polroles`,
//! `fdwoptions`, `prattrs`) as text, so the queries `pg_dump` sends over
//! them did not plan, and fills `pg_rewrite` with the rules of
//! PostgreSQL's system views, tables weir does not have, at which
//! `pg_dump` stopped.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::datasource::MemTable;

/// A column's type, as PostgreSQL names it.
#[derive(Clone, Copy)]
enum Pg {
    Oid,
    OidArray,
    Int4,
    Int2Array,
    Bool,
    Text,
    TextArray,
}

/// The tables, each with its columns.
const TABLES: &[(&str, &[(&str, Pg)])] = &[
    (
        "pg_transform",
        &[
            ("oid", Pg::Oid),
            ("trftype", Pg::Oid),
            ("trflang", Pg::Oid),
            ("trffromsql", Pg::Oid),
            ("trftosql", Pg::Oid),
        ],
    ),
    (
        "pg_seclabel",
        &[
            ("objoid", Pg::Oid),
            ("classoid", Pg::Oid),
            ("objsubid", Pg::Int4),
            ("provider", Pg::Text),
            ("label", Pg::Text),
        ],
    ),
    (
        "pg_seclabels",
        &[
            ("objoid", Pg::Oid),
            ("classoid", Pg::Oid),
            ("objsubid", Pg::Int4),
            ("objtype", Pg::Text),
            ("objnamespace", Pg::Oid),
            ("objname", Pg::Text),
            ("provider", Pg::Text),
            ("label", Pg::Text),
        ],
    ),
    (
        "pg_event_trigger",
        &[
            ("oid", Pg::Oid),
            ("evtname", Pg::Text),
            ("evtevent", Pg::Text),
            ("evtowner", Pg::Oid),
            ("evtfoid", Pg::Oid),
            ("evtenabled", Pg::Text),
            ("evttags", Pg::TextArray),
        ],
    ),
    (
        "pg_policy",
        &[
            ("oid", Pg::Oid),
            ("polname", Pg::Text),
            ("polrelid", Pg::Oid),
            ("polcmd", Pg::Text),
            ("polpermissive", Pg::Bool),
            ("polroles", Pg::OidArray),
            ("polqual", Pg::Text),
            ("polwithcheck", Pg::Text),
        ],
    ),
    (
        "pg_foreign_data_wrapper",
        &[
            ("oid", Pg::Oid),
            ("fdwname", Pg::Text),
            ("fdwowner", Pg::Oid),
            ("fdwhandler", Pg::Oid),
            ("fdwvalidator", Pg::Oid),
            ("fdwacl", Pg::TextArray),
            ("fdwoptions", Pg::TextArray),
        ],
    ),
    (
        "pg_foreign_server",
        &[
            ("oid", Pg::Oid),
            ("srvname", Pg::Text),
            ("srvowner", Pg::Oid),
            ("srvfdw", Pg::Oid),
            ("srvtype", Pg::Text),
            ("srvversion", Pg::Text),
            ("srvacl", Pg::TextArray),
            ("srvoptions", Pg::TextArray),
        ],
    ),
    (
        "pg_default_acl",
        &[
            ("oid", Pg::Oid),
            ("defaclrole", Pg::Oid),
            ("defaclnamespace", Pg::Oid),
            ("defaclobjtype", Pg::Text),
            ("defaclacl", Pg::TextArray),
        ],
    ),
    (
        "pg_publication_rel",
        &[
            ("oid", Pg::Oid),
            ("prpubid", Pg::Oid),
            ("prrelid", Pg::Oid),
            ("prqual", Pg::Text),
            ("prattrs", Pg::Int2Array),
        ],
    ),
    (
        "pg_rewrite",
        &[
            ("oid", Pg::Oid),
            ("rulename", Pg::Text),
            ("ev_class", Pg::Oid),
            ("ev_type", Pg::Text),
            ("ev_enabled", Pg::Text),
            ("is_instead", Pg::Bool),
            ("ev_qual", Pg::Text),
            ("ev_action", Pg::Text),
        ],
    ),
];

/// Names every table [`empty_catalog`] answers for.
pub fn empty_catalog_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|(name, _)| *name)
}

/// The empty table `name`, if it is one of them.
pub fn empty_catalog(name: &str) -> Option<Result<Arc<dyn TableProvider>>> {
    let (_, columns) = TABLES.iter().find(|(table, _)| *table == name)?;
    let fields: Vec<Field> = columns.iter().map(|(c, pg)| field(c, *pg)).collect();
    let schema = Arc::new(Schema::new(fields));
    Some(
        MemTable::try_new(schema, vec![vec![]])
            .map(|table| Arc::new(table) as Arc<dyn TableProvider>),
    )
}

fn field(name: &str, pg: Pg) -> Field {
    let list = |element: DataType| DataType::List(Arc::new(Field::new_list_field(element, true)));
    let oid = HashMap::from([("pg.oid_alias".to_string(), "oid".to_string())]);
    match pg {
        Pg::Oid => Field::new(name, DataType::Int32, true).with_metadata(oid),
        Pg::OidArray => Field::new(name, list(DataType::Int32), true).with_metadata(HashMap::from(
            [(crate::PG_TYPE_KEY.to_string(), "oid[]".to_string())],
        )),
        Pg::Int4 => Field::new(name, DataType::Int32, true),
        Pg::Int2Array => Field::new(name, list(DataType::Int16), true),
        Pg::Bool => Field::new(name, DataType::Boolean, true),
        Pg::Text => Field::new(name, DataType::Utf8, true),
        Pg::TextArray => Field::new(name, list(DataType::Utf8), true),
    }
}
