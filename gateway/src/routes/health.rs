//! `/healthz` (the process answers) and `/readyz` (broker channel and Redis are up).

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};

use crate::{
    error::ApiError,
    failure::{self, Failure},
    state::AppState,
};

/// A health answer.
#[derive(Debug, Object)]
pub struct Health {
    pub status: String,
}

/// Health probes.
#[derive(Debug)]
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Liveness
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness: the broker's confirm channel is open and Redis answers
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(
        &self,
        state: Data<&AppState>,
    ) -> Result<Json<Health>, Failure<{ failure::READINESS }>> {
        if !state.publisher.is_ready().await {
            return Err(ApiError::unavailable("not connected to the message broker").into());
        }
        state.store.ping().await?;
        Ok(Json(Health {
            status: "ready".into(),
        }))
    }
}
