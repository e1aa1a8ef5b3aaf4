//! One row of a decision table: the outcome every layer produces.

use http::StatusCode;

use crate::advice::{Advice, Category, CooldownClass};

/// The decision a table row makes: category, HTTP status and the advice flags.
///
/// Rows are `const` so every table is plain data; [`Rule::advice`] turns a row into an
/// [`Advice`] that the server-supplied parts (retry-after, fallback model) are added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    category: Category,
    status: u16,
    retry_same: bool,
    retry_other: bool,
    cooldown: CooldownClass,
    refresh: bool,
    reconnect: bool,
    disable: bool,
}

impl Rule {
    /// A row with the given category and status and every advice flag off.
    pub const fn new(category: Category, status: u16) -> Self {
        Self {
            category,
            status,
            retry_same: false,
            retry_other: false,
            cooldown: CooldownClass::None,
            refresh: false,
            reconnect: false,
            disable: false,
        }
    }

    /// Retry on the same account is advised.
    pub(crate) const fn same(mut self) -> Self {
        self.retry_same = true;
        self
    }

    /// Retry on another account is advised.
    pub(crate) const fn other(mut self) -> Self {
        self.retry_other = true;
        self
    }

    /// Retry on both the same and another account.
    pub(crate) const fn any(self) -> Self {
        self.same().other()
    }

    /// Cool the account down with the given class.
    pub(crate) const fn cool(mut self, class: CooldownClass) -> Self {
        self.cooldown = class;
        self
    }

    /// Refresh credentials first.
    pub(crate) const fn refresh(mut self) -> Self {
        self.refresh = true;
        self
    }

    /// Drop the connection / handle.
    pub(crate) const fn reconnect(mut self) -> Self {
        self.reconnect = true;
        self
    }

    /// Take the account out of rotation until a person fixes it.
    pub(crate) const fn disable(mut self) -> Self {
        self.disable = true;
        self
    }

    /// The category this row assigns.
    pub const fn category(&self) -> Category {
        self.category
    }

    /// The HTTP status this row assigns, as a number.
    pub const fn status_u16(&self) -> u16 {
        self.status
    }

    /// The HTTP status this row assigns.
    pub fn status(&self) -> StatusCode {
        // Every status in the tables is in 100..=999 (a test checks it), so the fallback is
        // never taken; it only avoids a panic path.
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The cooldown class this row assigns.
    pub const fn cooldown_class(&self) -> CooldownClass {
        self.cooldown
    }

    /// The advice this row gives, before server-supplied retry-after and fallback model.
    pub fn advice(&self) -> Advice {
        Advice::new()
            .with_retry_same_account(self.retry_same)
            .with_retry_other_account(self.retry_other)
            .with_cooldown(self.cooldown.duration())
            .with_refresh_credentials(self.refresh)
            .with_reconnect(self.reconnect)
            .with_disable_account(self.disable)
    }

    /// Applies `CustomErrorDetails.is_retryable` from the server.
    ///
    /// `Some(false)`: the same request with the same credentials will not succeed, so no
    /// retry on this account unless the credentials change first; another account is only
    /// tried when the failure is account-specific; a short cooldown becomes long (the server
    /// says waiting briefly will not help). `Some(true)`: both retries are allowed (the same
    /// account only if it is not disabled), except for an outdated client: every account
    /// shares the client version, so no retry can succeed whatever the flag says.
    pub(crate) const fn with_server_retryable(mut self, retryable: Option<bool>) -> Self {
        if matches!(self.category, Category::OutdatedClient) {
            return self;
        }
        match retryable {
            Some(false) => {
                self.retry_same = self.retry_same && self.refresh;
                self.retry_other = self.retry_other && self.category.is_account_specific();
                if matches!(self.cooldown, CooldownClass::Short) {
                    self.cooldown = CooldownClass::Long;
                }
            }
            Some(true) => {
                // A disabled account stays out whatever the request's own retryability.
                self.retry_same = !self.disable;
                self.retry_other = true;
            }
            None => {}
        }
        self
    }

    /// The markdown cells shared by every rendered table:
    /// category | status | same | other | cooldown | refresh | reconnect | disable.
    pub(crate) fn markdown_cells(&self) -> String {
        fn mark(on: bool) -> &'static str {
            if on { "✓" } else { "–" }
        }
        format!(
            "`{}` | {} | {} | {} | {} | {} | {} | {}",
            self.category.as_str(),
            self.status,
            mark(self.retry_same),
            mark(self.retry_other),
            self.cooldown.as_str(),
            mark(self.refresh),
            mark(self.reconnect),
            mark(self.disable),
        )
    }
}

/// Header cells matching [`Rule::markdown_cells`].
pub(crate) const RULE_HEADER: &str =
    "category | status | same acct | other acct | cooldown | refresh | reconnect | disable";
/// Separator cells matching [`RULE_HEADER`].
pub(crate) const RULE_SEPARATOR: &str = "---|---|---|---|---|---|---|---";

/// Appends one markdown table of the docs: `lead` header cells (`"code"`, `"code | name"`), the
/// rule's columns, then "why"; each row gives its lead cells already joined with ` | `, its rule
/// cells (a rule's [`Rule::markdown_cells`] or a stand-in) and its reason.
pub(crate) fn push_rule_table<L, C, W>(
    out: &mut String,
    lead: &str,
    rows: impl IntoIterator<Item = (L, C, W)>,
) where
    L: std::fmt::Display,
    C: std::fmt::Display,
    W: std::fmt::Display,
{
    let lead_separator = vec!["---"; lead.split('|').count()].join("|");
    out.push_str(&format!("| {lead} | {RULE_HEADER} | why |\n"));
    out.push_str(&format!("|{lead_separator}|{RULE_SEPARATOR}|---|\n"));
    for (lead_cells, rule_cells, why) in rows {
        out.push_str(&format!("| {lead_cells} | {rule_cells} | {why} |\n"));
    }
}
