//! A one-line text editor: the prompt box, the input line, and the fields the training form
//! and the results pane type into. The cursor counts characters, not bytes.

/// An editing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Char(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
}

/// A one-line text editor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineEdit {
    pub text: String,
    /// Cursor, in characters.
    pub cursor: usize,
}

impl LineEdit {
    /// The text, with the cursor at its end.
    pub fn new(text: &str) -> Self {
        Self { text: text.into(), cursor: text.chars().count() }
    }

    fn byte(&self, i: usize) -> usize {
        self.text.char_indices().nth(i).map_or(self.text.len(), |(b, _)| b)
    }

    pub fn apply(&mut self, e: Edit) {
        let n = self.text.chars().count();
        match e {
            Edit::Char(c) => {
                let b = self.byte(self.cursor);
                self.text.insert(b, c);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let b = self.byte(self.cursor);
                self.text.remove(b);
            }
            Edit::Delete if self.cursor < n => {
                let b = self.byte(self.cursor);
                self.text.remove(b);
            }
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(n),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = n,
            Edit::Backspace | Edit::Delete => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_edit_inserts_and_deletes_at_the_cursor_in_characters() {
        let mut e = LineEdit::new("añb");
        e.apply(Edit::Left);
        e.apply(Edit::Char('é'));
        assert_eq!((e.text.as_str(), e.cursor), ("añéb", 3));
        e.apply(Edit::Backspace);
        e.apply(Edit::Backspace);
        assert_eq!(e.text, "ab");
        e.apply(Edit::Home);
        e.apply(Edit::Delete);
        assert_eq!((e.text.as_str(), e.cursor), ("b", 0));
    }

    #[test]
    fn new_puts_the_cursor_after_the_last_character() {
        let e = LineEdit::new("héllo");
        assert_eq!(e.cursor, 5);
    }

    #[test]
    fn typing_inserts_at_the_cursor() {
        let mut e = LineEdit::new("ac");
        e.apply(Edit::Left);
        e.apply(Edit::Char('b'));
        assert_eq!((e.text.as_str(), e.cursor), ("abc", 2));
    }

    #[test]
    fn backspace_at_the_start_and_delete_at_the_end_do_nothing() {
        let mut e = LineEdit::new("ab");
        e.apply(Edit::Delete);
        assert_eq!((e.text.as_str(), e.cursor), ("ab", 2));
        e.apply(Edit::Home);
        e.apply(Edit::Backspace);
        assert_eq!((e.text.as_str(), e.cursor), ("ab", 0));
    }

    #[test]
    fn the_cursor_stays_within_the_text() {
        let mut e = LineEdit::new("ab");
        e.apply(Edit::Right);
        assert_eq!(e.cursor, 2);
        e.apply(Edit::Home);
        e.apply(Edit::Left);
        assert_eq!(e.cursor, 0);
        e.apply(Edit::End);
        assert_eq!(e.cursor, 2);
    }

    #[test]
    fn multibyte_characters_are_edited_whole() {
        let mut e = LineEdit::new("日本語");
        e.apply(Edit::Left);
        e.apply(Edit::Backspace);
        assert_eq!((e.text.as_str(), e.cursor), ("日語", 1));
        e.apply(Edit::Char('🙂'));
        assert_eq!((e.text.as_str(), e.cursor), ("日🙂語", 2));
        e.apply(Edit::Delete);
        assert_eq!((e.text.as_str(), e.cursor), ("日🙂", 2));
    }
}
