#![doc = include_str!("../README.md")]

pub mod authoring;
pub mod call;
pub mod compose;
pub mod diff;
pub mod domain;
pub mod error;
pub mod events;
pub mod execute;
pub mod export;
pub mod idempotency;
pub mod page;
pub mod people;
pub mod provider;
pub mod registry;
pub mod retention;
pub mod server;
pub mod store;
pub mod template;
pub mod validate;
pub mod validated;
pub mod wire;

pub use domain::{credential, run};

pub use authoring::{
    Analysis, AnalyzeRequest, CreateRequest, Created, Critique, OptimizeRequest, Optimized, Remix,
    RemixRequest, RemixStyle, Tool, ToolsConfig,
};
pub use compose::{Composed, Resolution};
pub use credential::{ProviderCredential, ProviderKind};
pub use diff::VersionDiff;
pub use domain::{
    ApiKeyRecord, AuditEntry, AuthSession, BatchFailure, BatchOp, BatchOutcome, ChatMessage,
    Committed, DEFAULT_PROTECTED_LABELS, Delivery, DeliveryReport, DeliveryStatus, Event,
    EventPage, EventType, Invitation, KeyRole, Label, LabelExpect, LabelMove, LabelSplit,
    LabelTarget, MAX_TEMPLATE_BYTES, MAX_TEMPLATE_VARIABLES, Member, Membership, NewEvent,
    NewPrompt, NewUser, NewVersion, OrgRole, Organization, Project, Prompt, PromptUpdate,
    PromptVersion, ProtectedLabel, Rendered, Role, Selector, SplitWeights, Template, TemplateKind,
    User, UserUpdate, Webhook, WebhookUpdate, check_batch_size, check_if_match,
    check_parent_version, validate_batch, validate_ops,
};
pub use error::{Error, ErrorKind, ProviderError, ProviderErrorKind, Result, TemplateError};
pub use events::{EventLog, WebhookStore};
pub use execute::{
    DEFAULT_RUN_LEASE, ExecuteOptions, Execution, ExecutionPlan, ProviderSource, WorkerPool,
    WorkerPoolConfig,
};
pub use export::{
    ExportOptions, ImportConflict, ImportOptions, ImportPlan, LabelDocument, PromptBundle,
    PromptDocument, VersionDocument,
};
pub use idempotency::{
    ClaimTimes, IdempotencyClaim, IdempotencyStore, IdempotentRequest, IdempotentResponse,
};
pub use page::{Page, PageRequest};
pub use people::{OrgWithRole, PeopleStore};
pub use provider::{
    ChatRequest, ChatResponse, ChatStream, Pricing, Provider, ProviderSet, StreamEvent, Usage,
    collect_stream,
};
pub use registry::Registry;
pub use run::{
    Bucket, GroupBy, NewRun, Order, Run, RunError, RunLease, RunQuery, RunStats, RunStatus,
    RunUpdate, StatsQuery,
};
pub use server::RegistryServer;
pub use store::{PromptFilter, PromptStore, RunLog};
pub use template::{RenderOptions, TemplateFormat, Variables};
pub use validated::{ValidatedRunLog, ValidatedStore};

/// Re-exported so users name the same decimal type as the API.
pub use rust_decimal::Decimal;
