//! Email: rendering journey messages from templates, composing them (Message-ID, List-Unsubscribe
//! with a signed link, RFC 8058 one-click), sending over SMTP, and `kanta mail listen`'s receiver.
//!
//! The path of one message, each step a module:
//!
//! ```text
//! MessageSpec + MessageContext ──render──▶ Rendered {subject, html, text}
//!   (inline or templates/NAME.html/.txt,      (layout.html wraps the HTML; the text part is
//!    customer, scores, orders, links)           NAME.txt or derived from the HTML: text)
//! Rendered + MessageKey + Kind ──compose──▶ lettre::Message (Message-ID from the key,
//!                                            List-Unsubscribe + List-Unsubscribe-Post for marketing)
//! Message ──smtp::Mailer::send──▶ Outcome::{Sent, Permanent, Temporary, Unknown}
//!            (pool of TCP_NODELAY connections, concurrency limit, rate::RateLimiter)
//! ```
//!
//! **Architecture Invariant:** marketing mail always carries `List-Unsubscribe` (an HTTP(S) URL
//! with a signed token, [`unsubscribe`]) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`:
//! [`compose::Kind::Marketing`] cannot be built without the URL.
//! **Architecture Invariant:** the mailer connects only to the one SMTP server of the settings
//! ([`EmailSettings::smtp_url`]); nothing in a template or a customer record can name another.

pub mod compose;
pub mod context;
pub mod headers;
pub mod listen;
mod pool;
pub mod rate;
pub mod render;
pub mod settings;
pub mod smtp;
pub mod text;
pub mod unsubscribe;

pub use compose::{ComposeError, Kind, MessageKey, Outgoing, compose};
pub use context::MessageContext;
/// A composed email, as [`compose`] builds it and [`Mailer::send`](smtp::Mailer::send) sends it.
pub use lettre::Message;
pub use render::{Body, MessageSpec, RenderError, Rendered, TemplateProblem, Templates, check, read_source};
pub use settings::{EmailConfig, EmailSettings, SettingsError, SmtpUrl};
pub use smtp::{Mailer, Outcome};
pub use unsubscribe::{Channel, UnsubscribeError, UnsubscribeKey, Unsubscribed};

#[cfg(feature = "testing")]
pub mod testing;
