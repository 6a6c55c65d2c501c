//! The text of `EXPLAIN CREATE MATERIALIZED VIEW`: one line per operator,
//! children indented below their parent.

/// An operator's line and its inputs'.
#[derive(Debug, Clone)]
pub struct ExplainNode {
    pub line: String,
    pub children: Vec<ExplainNode>,
}

impl ExplainNode {
    /// The tree as lines, the root first.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.render(0, &mut lines);
        lines
    }

    fn render(&self, depth: usize, lines: &mut Vec<String>) {
        lines.push(format!("{}{}", "  ".repeat(depth), self.line));
        for child in &self.children {
            child.render(depth + 1, lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_indented() {
        let leaf = |line: &str| ExplainNode {
            line: line.into(),
            children: vec![],
        };
        let tree = ExplainNode {
            line: "join".into(),
            children: vec![leaf("a"), leaf("b")],
        };
        assert_eq!(tree.lines(), vec!["join", "  a", "  b"]);
    }
}
