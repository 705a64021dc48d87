//! A job's answer, typed: what each engine returns and what `GET
//! /api/jobs/{id}` shows as `result`. The JSON is the one SPEC §5 gives
//! (`engine` first, then the fields in alphabetical order, as the untyped
//! `serde_json::Value` wrote them before), so stored jobs read back alike.

use serde::{Deserialize, Serialize};

use super::engine::builtin::Passage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "engine", rename_all = "lowercase")]
pub enum Answer {
    Builtin(BuiltinAnswer),
    Command(CommandAnswer),
}

/// The built-in search's answer: the best passages, as Markdown in
/// `output` and one by one in `matches`. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinAnswer {
    pub execution_time_ms: u64,
    #[serde(default)]
    pub files_scanned: usize,
    #[serde(default)]
    pub matches: Vec<Passage>,
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_branch: Option<String>,
}

/// An `ASK_COMMAND` program's standard output. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandAnswer {
    pub execution_time_ms: u64,
    #[serde(default)]
    pub exit_code: i32,
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_branch: Option<String>,
    /// The output was cut at 1 MiB.
    #[serde(default)]
    pub truncated: bool,
}

impl Answer {
    /// The answer's text (Markdown from the built-in engine; whatever the
    /// command printed otherwise).
    pub fn output(&self) -> &str {
        match self {
            Self::Builtin(answer) => &answer.output,
            Self::Command(answer) => &answer.output,
        }
    }

    /// The engine's name, as in the JSON's `engine`.
    pub fn engine(&self) -> &'static str {
        match self {
            Self::Builtin(_) => "builtin",
            Self::Command(_) => "command",
        }
    }

    /// Records how long the job took and which branch it read.
    pub(super) fn stamped(mut self, elapsed_ms: u64, branch: Option<&str>) -> Self {
        let (time, source) = match &mut self {
            Self::Builtin(a) => (&mut a.execution_time_ms, &mut a.source_branch),
            Self::Command(a) => (&mut a.execution_time_ms, &mut a.source_branch),
        };
        *time = elapsed_ms;
        *source = branch.map(str::to_owned);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the untyped code wrote: a `Value` object, keys in order.
    fn as_value_wrote(value: serde_json::Value) -> String {
        value.to_string()
    }

    #[test]
    fn a_builtin_answer_serializes_byte_for_byte_as_the_untyped_result_did() {
        let answer = Answer::Builtin(BuiltinAnswer {
            execution_time_ms: 12,
            files_scanned: 3,
            matches: vec![Passage {
                path: "src/lib.rs".into(),
                start_line: 1,
                end_line: 12,
                score: 1.5,
                snippet: "fn main() {}".into(),
            }],
            output: "## src/lib.rs".into(),
            source_branch: Some("feature".into()),
        });
        let before = as_value_wrote(json!({
            "output": "## src/lib.rs",
            "matches": [{"path": "src/lib.rs", "startLine": 1, "endLine": 12, "score": 1.5, "snippet": "fn main() {}"}],
            "filesScanned": 3, "engine": "builtin", "executionTimeMs": 12, "sourceBranch": "feature",
        }));
        assert_eq!(serde_json::to_string(&answer).unwrap(), before);
        assert_eq!(serde_json::from_str::<Answer>(&before).unwrap(), answer);
    }

    #[test]
    fn a_command_answer_serializes_byte_for_byte_as_the_untyped_result_did() {
        let answer = Answer::Command(CommandAnswer {
            execution_time_ms: 40,
            exit_code: 0,
            output: "from the agent\n".into(),
            source_branch: None,
            truncated: false,
        });
        let before = as_value_wrote(json!({
            "output": "from the agent\n", "truncated": false, "exitCode": 0,
            "engine": "command", "executionTimeMs": 40,
        }));
        assert_eq!(serde_json::to_string(&answer).unwrap(), before);
        assert_eq!(serde_json::from_str::<Answer>(&before).unwrap(), answer);
    }

    #[test]
    fn a_stored_answer_with_only_the_spec_fields_still_reads() {
        let stored = json!({"output": "old", "engine": "builtin", "executionTimeMs": 1});
        let answer: Answer = serde_json::from_value(stored).unwrap();
        assert_eq!(answer.output(), "old");
        assert_eq!(answer.engine(), "builtin");
    }
}
