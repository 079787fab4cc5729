//! Email: rendering journey messages from templates, composing them (Message-ID, List-Unsubscribe
//! with a signed link, RFC 8058 one-click), sending over SMTP, and `kanta mail listen`'s receiver.
