//! The routes of the systems this service replaces, so that their clients switch by
//! changing a base URL (tag `compat` in the OpenAPI document; README "Compatibility
//! routes"). Each maps onto what the service already does, with the old design's
//! paths and field names:
//!
//! - [`analysis`]: the prompt analysis service's `POST /api/v1/{analyze,remix,create}`,
//!   aliases of the authoring aids `POST /api/v1/tools/{analyze,remix,create}`, open to
//!   anonymous callers when the operator says so (`--public-tools`).
//! - [`ai_prompts`]: the AI prompt manager's `/ai/prompts/`: a prompt request is a run
//!   of the pass-through prompt [`ai_prompts::AI_PROMPT`], executed by the background
//!   workers.
//! - [`optimizer`]: the prompt optimizer backend's `GET /api/models` and
//!   `/api/models/config[/{model}]`, over the stored provider credentials.
//! - [`optimizer_prompts`]: the prompt optimizer backend's `/api/prompts[/{id}…]`,
//!   over our prompts and versions and the optimize authoring aid. (Its
//!   `GET /api/sync/status` and `POST /api/sync/force` are the change feed's, in
//!   `routes::events`.)

pub mod ai_prompts;
pub mod analysis;
pub mod optimizer;
pub mod optimizer_prompts;
