//! Sending the account emails (verification, password reset, invitations, set-password
//! links): through SMTP with lettre when configured, else into the log at `info` for an
//! operator to pass on (said once at start-up).

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prompt_core::{Error, Result};

/// Where account emails go.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp {
        /// The transport (pooled connections; boxed, it is large).
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// The sender.
        from: Mailbox,
    },
    /// No SMTP: links are logged.
    Log,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Log => f.write_str("Mailer::Log"),
        }
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The link in it, logged when there is no SMTP.
    pub link: String,
}

impl Mailer {
    /// A mailer over the SMTP server at `url` (`smtp://host:port` for plain or
    /// STARTTLS-when-offered, `smtps://host:port` for TLS; credentials as
    /// `smtp://user:pass@host`), sending as `from`.
    pub fn smtp(url: &str, from: &str) -> Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| Error::invalid("smtp_from", format!("'{from}' is not a mailbox: {e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::invalid("smtp_url", format!("not a usable SMTP URL: {e}")))?
            .build();
        Ok(Mailer::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    /// Whether mail is really sent.
    pub fn is_smtp(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Send `mail`. Errors are the caller's to log: a mail that cannot go out must not
    /// change the answer of the request that caused it (no account enumeration).
    pub async fn send(&self, mail: Mail) -> Result<()> {
        match self {
            Mailer::Log => {
                tracing::info!(
                    to = %mail.to,
                    subject = %mail.subject,
                    link = %mail.link,
                    "no SMTP configured: pass this link on to the user"
                );
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = mail.to.parse().map_err(|e| {
                    Error::invalid("email", format!("'{}' is not a mailbox: {e}", mail.to))
                })?;
                // Quoted-printable, always: links stay readable in any mail client and
                // tests can read the token back.
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject)
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .header(ContentTransferEncoding::QuotedPrintable)
                            .body(mail.body),
                    )
                    .map_err(|e| Error::internal(format!("building an email: {e}")))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| Error::unavailable(format!("sending an email: {e}")))?;
                Ok(())
            }
        }
    }

    /// Send `mail` in the background, logging a failure: the request's answer and
    /// timing do not depend on whether (or to whom) mail went.
    pub fn send_later(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let to = mail.to.clone();
            if let Err(e) = mailer.send(mail).await {
                tracing::warn!(error = %e, to = %to, "an account email could not be sent");
            }
        });
    }
}
