//! Journeys as data: lifecycle conversations (a welcome series, a next-purchase reminder, a
//! win-back offer) written as YAML or JSON documents, checked with every problem's position, and
//! the pure rules that decide when a step is due and whether a message may go.
//!
//! Pure and IO-free: the store keeps documents and runs, the server's engine drives them with the
//! injected clock, and `kanta-mail` renders and sends what this crate decides.

pub mod duration;
pub mod guard;
pub mod when;
pub mod zone;
