//! A job and its id.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::answer::Answer;

/// `2026-11-27T18-12-22Z-a1b2c3d4`: creation time and 8 random hex digits.
/// Safe as a file name by construction; the only form accepted from clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn generate(now: DateTime<Utc>) -> Self {
        let suffix: u32 = rand::random();
        Self(format!("{}-{suffix:08x}", now.format("%Y-%m-%dT%H-%M-%SZ")))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let shape = "dddd-dd-ddTdd-dd-ddZ-hhhhhhhh".as_bytes();
        let ok = bytes.len() == shape.len()
            && bytes.iter().zip(shape).all(|(b, s)| match s {
                b'd' => b.is_ascii_digit(),
                b'h' => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
                other => b == other,
            });
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_owned())).ok()
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[schema(value_type = String)]
    pub id: JobId,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: JobStatus,
    pub workspace_id: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_branch: Option<String>,
    /// The principal that asked; clients see only their own jobs.
    pub owner_id: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// `Answer`: `{"engine", "output", "executionTimeMs", ...}` (SPEC §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Answer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How often a worker has started on it.
    #[serde(default)]
    pub attempts: u32,
}

/// How much of a question a listing keeps, in characters (both back ends).
pub const QUESTION_PREVIEW_CHARS: usize = 200;

impl Job {
    /// The job's listing form, as both back ends keep it for listings: the
    /// question cut to `QUESTION_PREVIEW_CHARS`, without context or result.
    pub fn summary(&self) -> Job {
        let mut question: String = self.question.chars().take(QUESTION_PREVIEW_CHARS).collect();
        if question.len() < self.question.len() {
            question.push('…');
        }
        Job {
            question,
            context: None,
            result: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_nothing_else_does() {
        let id = JobId::generate(Utc::now());
        assert_eq!(JobId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "..",
            "../../etc/passwd",
            "2026-11-27T18-12-22Z-a1b2c3d",
            "2026-11-27T18-12-22Z-A1B2C3D4",
            "2026-11-27T18-12-22Z-a1b2c3d4/",
        ] {
            assert_eq!(JobId::parse(bad), None, "{bad}");
        }
    }
}
