//! The mail service's data: folders of emails and a user directory with nested personal data.
//! Everything is made up; the shapes are what matter, because the policies redact by path
//! (`emails[*].attachments`, `user_pii.social_security_number`, ...).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A mail folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    Inbox,
    Drafts,
    Sent,
}

impl Folder {
    /// Every folder, in display order.
    pub const ALL: [Folder; 3] = [Folder::Inbox, Folder::Drafts, Folder::Sent];

    /// The folder's name as it appears in URIs (`mail://inbox/...`) and arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Drafts => "drafts",
            Folder::Sent => "sent",
        }
    }

    /// Parses a folder name as written in a URI.
    pub fn parse(name: &str) -> Option<Folder> {
        Folder::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// A file attached to an email. The policies treat attachments as sensitive: shown only after
/// the user approves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// One email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Email {
    /// Stable id, also the last segment of its resource URI.
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

/// A bank account, nested two levels deep in a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bank {
    pub account_number: String,
    pub iban: String,
}

/// The personal data of a profile, grouped so one path (`user_pii.*`) reaches all of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserPii {
    pub social_security_number: String,
    pub phone: String,
    pub bank: Bank,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    pub street: String,
    pub city: String,
}

/// A user profile as `get_user_profile` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserProfile {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub user_pii: UserPii,
    pub addresses: Vec<Address>,
}

fn email(
    id: &str,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    attachments: &[(&str, u64)],
) -> Email {
    Email {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        subject: subject.into(),
        body: body.into(),
        attachments: attachments
            .iter()
            .map(|(name, size)| Attachment {
                name: (*name).into(),
                size: *size,
            })
            .collect(),
    }
}

/// The mailbox as it is at startup (and after `admin_tool` resets it).
pub fn seed_mailbox() -> Vec<(Folder, Email)> {
    vec![
        (
            Folder::Inbox,
            email(
                "m1",
                "bob@example.com",
                "ann@example.com",
                "Q3 numbers",
                "Hi Ann, the Q3 report is attached. Revenue is up 12%.",
                &[("q3-report.pdf", 482_113)],
            ),
        ),
        (
            Folder::Inbox,
            email(
                "m2",
                "carol@example.com",
                "ann@example.com",
                "Lunch on Friday?",
                "Are you free for lunch on Friday at noon?",
                &[],
            ),
        ),
        (
            Folder::Inbox,
            email(
                "m3",
                "it-support@example.com",
                "ann@example.com",
                "Your new laptop",
                "Your laptop is ready. The setup guide and your temporary password are attached.",
                &[("setup-guide.pdf", 91_204), ("temporary-password.txt", 38)],
            ),
        ),
        (
            Folder::Drafts,
            email(
                "d1",
                "ann@example.com",
                "board@example.com",
                "Confidential: acquisition",
                "Draft: we are in talks to acquire Example Widgets. Do not forward.",
                &[("term-sheet.docx", 55_872)],
            ),
        ),
        (
            Folder::Sent,
            email(
                "s1",
                "ann@example.com",
                "bob@example.com",
                "Re: Q3 numbers",
                "Thanks Bob, looks great.",
                &[],
            ),
        ),
    ]
}

/// The user directory: ids, names and emails are also in the SQLite `users` table; the
/// personal data lives only here.
pub fn users() -> Vec<UserProfile> {
    let profile = |id: &str,
                   name: &str,
                   email: &str,
                   ssn: &str,
                   phone: &str,
                   account: &str,
                   iban: &str,
                   addresses: &[(&str, &str)]| UserProfile {
        user_id: id.into(),
        name: name.into(),
        email: email.into(),
        user_pii: UserPii {
            social_security_number: ssn.into(),
            phone: phone.into(),
            bank: Bank {
                account_number: account.into(),
                iban: iban.into(),
            },
        },
        addresses: addresses
            .iter()
            .map(|(street, city)| Address {
                street: (*street).into(),
                city: (*city).into(),
            })
            .collect(),
    };
    vec![
        profile(
            "u1",
            "Ann Archer",
            "ann@example.com",
            "123-45-6789",
            "+1-202-555-0147",
            "000123456789",
            "DE89370400440532013000",
            &[("1 Main St", "Springfield"), ("5 Lake Rd", "Shelbyville")],
        ),
        profile(
            "u2",
            "Bob Baker",
            "bob@example.com",
            "987-65-4321",
            "+1-202-555-0199",
            "000987654321",
            "GB29NWBK60161331926819",
            &[("22 Oak Ave", "Capital City")],
        ),
        profile(
            "u3",
            "Carol Chen",
            "carol@example.com",
            "555-12-3456",
            "+44 20 7946 0958",
            "000555123456",
            "FR1420041010050500013M02606",
            &[("9 Rue Lafayette", "Paris")],
        ),
    ]
}
