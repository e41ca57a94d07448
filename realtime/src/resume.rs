//! Gapless, duplicate-free delivery by `seq`: per conversation, remember the last seq
//! delivered; drop what was already delivered, fill any jump from storage.

use std::collections::HashMap;

use uuid::Uuid;

use crate::MessageSnapshot;

/// Committed messages, read from storage to replay or fill a gap.
#[async_trait::async_trait]
pub trait History: Send + Sync {
    /// Messages with `after < seq < before` (all after `after` when `before` is `None`),
    /// ascending, at most `limit`.
    async fn messages_between(
        &self,
        conversation: Uuid,
        after: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<MessageSnapshot>, HistoryError>;
}

/// Committed messages could not be read; the storage's own error is the source.
#[derive(Debug, thiserror::Error)]
#[error("could not read committed messages: {0}")]
pub struct HistoryError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl HistoryError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> HistoryError {
        HistoryError(Box::new(cause))
    }
}

const PAGE: u64 = 200;

#[derive(Default, Debug)]
pub struct SeqCursor {
    last: HashMap<Uuid, i64>,
}

impl SeqCursor {
    /// Starts a conversation at `after`: what follows must begin at `after + 1`.
    pub fn start_at(&mut self, conversation: Uuid, after: i64) {
        self.last.insert(conversation, after);
    }

    pub fn last(&self, conversation: Uuid) -> Option<i64> {
        self.last.get(&conversation).copied()
    }

    /// Replays everything after the cursor's position from storage.
    pub async fn replay(
        &mut self,
        conversation: Uuid,
        history: &dyn History,
    ) -> Result<Vec<MessageSnapshot>, HistoryError> {
        let mut out = Vec::new();
        loop {
            let after = self.last.get(&conversation).copied().unwrap_or(0);
            let page = history.messages_between(conversation, after, None, PAGE).await?;
            let full = page.len() as u64 == PAGE;
            for m in page {
                self.last.insert(conversation, m.seq);
                out.push(m);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Decides what a live `MessageAdded` turns into: nothing (already delivered), itself,
    /// or the missing messages from storage followed by itself.
    pub async fn admit(
        &mut self,
        message: MessageSnapshot,
        history: &dyn History,
    ) -> Result<Vec<MessageSnapshot>, HistoryError> {
        let conversation = message.conversation_id;
        let Some(last) = self.last.get(&conversation).copied() else {
            // First message seen live for this conversation: it sets the baseline.
            self.last.insert(conversation, message.seq);
            return Ok(vec![message]);
        };
        if message.seq <= last {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if message.seq > last + 1 {
            let mut after = last;
            while after + 1 < message.seq {
                let page = history.messages_between(conversation, after, Some(message.seq), PAGE).await?;
                if page.is_empty() {
                    break;
                }
                after = page.last().map_or(after, |m| m.seq);
                out.extend(page);
            }
        }
        self.last.insert(conversation, message.seq);
        out.push(message);
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    struct Stored(Vec<MessageSnapshot>);

    #[async_trait::async_trait]
    impl History for Stored {
        async fn messages_between(
            &self,
            _c: Uuid,
            after: i64,
            before: Option<i64>,
            limit: u64,
        ) -> Result<Vec<MessageSnapshot>, HistoryError> {
            Ok(self
                .0
                .iter()
                .filter(|m| m.seq > after && before.is_none_or(|b| m.seq < b))
                .take(limit as usize)
                .cloned()
                .collect())
        }
    }

    /// A stored message of `conv` at `seq` (also the bus's test fixture).
    pub(crate) fn msg(conv: Uuid, seq: i64) -> MessageSnapshot {
        MessageSnapshot {
            id: Uuid::now_v7(),
            conversation_id: conv,
            seq,
            sender_id: Uuid::nil(),
            sender_username: "u".into(),
            sender_display_name: None,
            sender_is_bot: false,
            body: Some(format!("m{seq}")),
            client_message_id: None,
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted_at: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
        }
    }

    fn seqs(v: &[MessageSnapshot]) -> Vec<i64> {
        v.iter().map(|m| m.seq).collect()
    }

    #[tokio::test]
    async fn replay_then_live_has_no_gap_and_no_duplicate() {
        let conv = Uuid::now_v7();
        let store = Stored((1..=450).map(|s| msg(conv, s)).collect());
        let mut cursor = SeqCursor::default();
        cursor.start_at(conv, 10);
        let replayed = cursor.replay(conv, &store).await.unwrap_or_default();
        assert_eq!(seqs(&replayed), (11..=450).collect::<Vec<_>>());
        // A live event already covered by the replay is dropped.
        assert!(cursor.admit(msg(conv, 450), &store).await.unwrap_or_default().is_empty());
        assert_eq!(seqs(&cursor.admit(msg(conv, 451), &store).await.unwrap_or_default()), vec![451]);
    }

    #[tokio::test]
    async fn a_seq_jump_is_filled_from_storage() {
        let conv = Uuid::now_v7();
        let store = Stored((1..=10).map(|s| msg(conv, s)).collect());
        let mut cursor = SeqCursor::default();
        cursor.start_at(conv, 3);
        let got = cursor.admit(msg(conv, 8), &store).await.unwrap_or_default();
        assert_eq!(seqs(&got), vec![4, 5, 6, 7, 8]);
        assert!(cursor.admit(msg(conv, 5), &store).await.unwrap_or_default().is_empty());
    }
}
