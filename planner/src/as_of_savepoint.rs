//! `SELECT ... FROM name AS OF SAVEPOINT sp`: a view or table read as a
//! savepoint holds it, without restoring anything.
//!
//! The parser folds `name AS OF SAVEPOINT sp` into one quoted relation
//! name, `"name AS OF SAVEPOINT sp"` (give it an alias to qualify its
//! columns); the public schema resolves such a name here, by reading the
//! view's materialize store (or the table's rows) from the savepoint's
//! files, each checked against the manifest, into memory.

use std::sync::Arc;

use datafusion::catalog::{MemTable, TableProvider};
use datafusion::sql::sqlparser::tokenizer::{Token, Word};
use weir_executor::batch::ViewTable;
use weir_executor::checkpoint::{fill_store, fill_tables};
use weir_storage::savepoint::SavepointLocation;
use weir_storage::{MemoryStateStore, TableStore};

use crate::catalog::Catalog;
use crate::savepoint_registry::SavepointRegistry;
use crate::tokens::{identifier, is_keyword, significant};
use crate::{Error, Result};

/// Joins a relation and a savepoint into the name the parser gives them.
const AS_OF: &str = " AS OF SAVEPOINT ";

/// Rewrites every `name AS OF SAVEPOINT sp` into `"name AS OF SAVEPOINT sp"`.
pub fn rewrite_as_of_savepoint(tokens: &mut Vec<Token>) -> Result<()> {
    loop {
        let significant = significant(tokens);
        let at = |k: usize| significant.get(k).map(|&i| &tokens[i]);
        let keyword = |k: usize, text: &str| at(k).is_some_and(|t| is_keyword(t, text));
        let Some(k) = (1..significant.len())
            .find(|&k| keyword(k, "AS") && keyword(k + 1, "OF") && keyword(k + 2, "SAVEPOINT"))
        else {
            return Ok(());
        };
        let (Some(Token::Word(relation)), Some(Token::Word(savepoint))) = (at(k - 1), at(k + 3))
        else {
            return Err(Error::user(
                "42601",
                "syntax error: expected name AS OF SAVEPOINT savepoint",
            ));
        };
        let name = format!("{}{AS_OF}{}", identifier(relation), identifier(savepoint));
        let (first, last) = (significant[k - 1], significant[k + 3]);
        tokens.splice(
            first..=last,
            [Token::Word(Word {
                value: name,
                quote_style: Some('"'),
                keyword: datafusion::sql::sqlparser::keywords::Keyword::NoKeyword,
            })],
        );
    }
}

/// The relation and savepoint of a name [`rewrite_as_of_savepoint`] made.
pub fn split_as_of(name: &str) -> Option<(&str, &str)> {
    name.split_once(AS_OF)
}

/// `relation` as savepoint `savepoint` holds it.
pub async fn saved_relation(
    catalog: &Catalog,
    savepoints: &SavepointRegistry,
    relation: &str,
    savepoint: &str,
) -> Result<Arc<dyn TableProvider>> {
    let record = savepoints.get(savepoint)?;
    let location = SavepointLocation::open(&record.location)?;
    let manifest = location.read_manifest().await?.ok_or_else(|| {
        Error::user(
            "58030",
            format!(
                "savepoint \"{savepoint}\" has no manifest at {}",
                record.location
            ),
        )
    })?;
    let missing = || {
        Error::user(
            "42P01",
            format!("relation \"{relation}\" is not in savepoint \"{savepoint}\""),
        )
    };
    if let Some(view) = catalog.view(relation) {
        let saved = manifest.view(view.id.0).ok_or_else(missing)?;
        let store = saved
            .stores
            .iter()
            .find(|s| s.identity.ends_with("Materialize"))
            .ok_or_else(missing)?;
        let state = Arc::new(MemoryStateStore::default());
        fill_store(&location, store, state.as_ref()).await?;
        return Ok(Arc::new(ViewTable::saved(
            view.id,
            Arc::clone(&view.schema),
            view.stored.clone(),
            state,
        )));
    }
    if let Some(table) = catalog.table(relation) {
        let id = table.layout.id;
        let state = MemoryStateStore::default();
        fill_tables(&location, &manifest, &state, &|key| {
            TableStore::is_table_key(id, key)
        })
        .await?;
        let rows = catalog
            .store()
            .saved_rows(id, &state)?
            .ok_or_else(missing)?;
        return Ok(Arc::new(MemTable::try_new(
            Arc::clone(&table.layout.schema),
            vec![vec![rows]],
        )?));
    }
    if catalog.source_relation(relation).is_some() {
        return Err(Error::not_supported(format!(
            "\"{relation}\" is a source, which keeps no state: read a view over it AS OF SAVEPOINT"
        )));
    }
    Err(Error::user(
        "42P01",
        format!("relation \"{relation}\" does not exist"),
    ))
}
