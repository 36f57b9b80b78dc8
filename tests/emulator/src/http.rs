//! The cloud-side HTTP JSON API, firmware download and HTTPS dynamic registration.

use std::sync::Arc;

use ntex::web::{self, HttpResponse};

use crate::state::Shared;

/// What every HTTP handler gets: the shared state and whether the listener is HTTPS.
#[derive(Clone)]
pub(crate) struct HttpCtx {
    pub shared: Arc<Shared>,
    #[allow(dead_code)] // used by the registration endpoint (HTTPS only)
    pub tls: bool,
}

/// Registers every route (see the README for the API).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/devices", web::get().to(list_devices));
}

async fn list_devices(ctx: web::types::State<HttpCtx>) -> HttpResponse {
    HttpResponse::Ok().json(&crate::api::devices(&ctx.shared))
}
