//! The bridge between tower's fallible middleware (timeout, load shedding, the request guard)
//! and axum's router, which takes only infallible services: every error below becomes its
//! [`ApiError`] answer. Unlike axum's `HandleErrorLayer`, it neither boxes the future nor
//! clones the inner service per request.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{Either, Map, Ready, ready};
use tower::{BoxError, Service};

use crate::http::error::ApiError;

/// Wraps a service whose errors are [`BoxError`]s into one that answers them.
#[derive(Debug)]
pub struct AnswerErrors<S> {
    /// The middleware stack whose errors are answered.
    inner: S,
    /// An error `poll_ready` of `inner` gave, answered at the next `call`.
    not_ready: Option<ApiError>,
}

impl<S> AnswerErrors<S> {
    /// Answers the errors of `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            not_ready: None,
        }
    }
}

impl<S: Clone> Clone for AnswerErrors<S> {
    /// A clone has not been polled: no pending error.
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

/// The answer to a result of the inner service.
type AnswerFn = fn(Result<Response, BoxError>) -> Result<Response, Infallible>;

impl<S, R> Service<R> for AnswerErrors<S>
where
    S: Service<R, Response = Response, Error = BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Map<S::Future, AnswerFn>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.not_ready.is_none()
            && let Err(error) = std::task::ready!(self.inner.poll_ready(cx))
        {
            self.not_ready = Some(ApiError::from_middleware(error));
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        match self.not_ready.take() {
            Some(error) => Either::Left(ready(Ok(error.into_response()))),
            None => Either::Right(self.inner.call(request).map(answer as AnswerFn)),
        }
    }
}

/// A response as it is, an error as its [`ApiError`] answer.
fn answer(result: Result<Response, BoxError>) -> Result<Response, Infallible> {
    Ok(result.unwrap_or_else(|error| ApiError::from_middleware(error).into_response()))
}
