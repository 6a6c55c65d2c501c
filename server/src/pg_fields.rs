//! The RowDescription of a result: arrow-pg's fields for its schema, with
//! what their field metadata says instead: the names a plan could not give
//! its columns itself (two columns of one name, as PostgreSQL allows), and
//! the PostgreSQL type of a column declared as one Arrow has not (`varchar`,
//! `uuid`, `json`, `jsonb`, `oid[]`, and the catalog's `int2vector` and
//! `oidvector`).

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion::arrow::datatypes::{DataType, Schema};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use weir_planner::{DISPLAY_NAME_KEY, PG_TYPE_KEY};

/// The fields a client is told `schema`'s columns have, in `format`.
pub(crate) fn pg_fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(schema, format, None)?;
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            let metadata = field.metadata();
            let is_list = matches!(field.data_type(), DataType::List(_));
            let shown_type = metadata
                .get(PG_TYPE_KEY)
                .and_then(|name| match name.as_str() {
                    "varchar" => Some(Type::VARCHAR),
                    "uuid" => Some(Type::UUID),
                    "json" => Some(Type::JSON),
                    "jsonb" => Some(Type::JSONB),
                    // Only while the column is still the list (not cast to text).
                    "int2vector" if is_list => Some(Type::INT2_VECTOR),
                    "oidvector" if is_list => Some(Type::OID_VECTOR),
                    "oid[]" if is_list => Some(Type::OID_ARRAY),
                    _ => None,
                });
            if metadata.get(DISPLAY_NAME_KEY).is_none() && shown_type.is_none() {
                return info;
            }
            FieldInfo::new(
                metadata
                    .get(DISPLAY_NAME_KEY)
                    .cloned()
                    .unwrap_or_else(|| info.name().to_string()),
                info.table_id(),
                info.column_id(),
                shown_type.unwrap_or_else(|| info.datatype().clone()),
                info.format(),
            )
            .with_type_size(info.type_size())
            .with_type_modifier(info.type_modifier())
        })
        .collect())
}
