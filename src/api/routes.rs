//! Everything at `/api` but `/api/health`, as one service: the public
//! resources (`/api/openapi.json`, `/api/docs`) first, never gated; then
//! the gate (`http::gate`), and after it the gated routes, by pattern and
//! then by method. The gated routes are behind the gate by construction:
//! an unknown path answers 401 without a valid key and 404 in the API's
//! shape with one; a method a resource lacks, 405 in the API's shape,
//! after the gate.
//!
//! Hand-written rather than actix's `web::scope("/api").wrap(..)`: the
//! scope costs a request a wrapper that adds its data container and boxes
//! its future, a boxed service per resource, a route table tried with
//! `capture_match_info_fn` (which builds and drops an array of sixteen path
//! segments per pattern tried), and a method guard per route. Measured
//! under callgrind, `GET /api/me` costs about 1,600 instructions less
//! through this service: −825 for the service itself, −795 for patterns
//! without parameters compared as strings and the matched pattern noted
//! for the request metrics (which otherwise match the path against the
//! resource map again, actix's router not having taken the request to its
//! resource); README, "Performance", "Round four: the gated scope". The
//! resource map given to actix is the scope's own (the `/api` prefix with
//! each pattern nested), so `match_pattern()` still names the route and
//! the census lists every route.

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::BoxBody;
use actix_web::dev::{
    AppService, HttpServiceFactory, Path, ResourceDef, ResourceMap, Service, ServiceFactory,
    ServiceRequest, ServiceResponse, Url,
};
use actix_web::http::Method;
use actix_web::{web, HttpMessage, Route};
use futures_util::future::{Either, LocalBoxFuture};

use crate::http::gate::{Gated, RequirePrincipalService};
use crate::http::request_metrics::MatchedPattern;
use crate::http::ApiError;

/// The prefix of the gated routes.
const PREFIX: &str = "/api";

/// Where the API's areas add their routes: the gated service's table, and
/// only as `ApiResource`s, whose other methods answer 405 in the API's
/// shape.
#[derive(Default)]
pub struct GatedRoutes(Vec<ApiResource>);

impl GatedRoutes {
    pub fn service(&mut self, resource: ApiResource) -> &mut Self {
        self.0.push(resource);
        self
    }
}

/// A resource of the gated service (`path` after `/api`): a handler per
/// method.
pub struct ApiResource {
    path: String,
    methods: Vec<(Method, Route)>,
}

/// A resource of the gated service at `path` (after `/api`).
pub fn resource(path: &str) -> ApiResource {
    ApiResource {
        path: path.to_owned(),
        methods: Vec::new(),
    }
}

impl ApiResource {
    fn to<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.methods.push((method, web::route().to(handler)));
        self
    }

    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.to(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.to(Method::POST, handler)
    }

    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.to(Method::PATCH, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.to(Method::DELETE, handler)
    }
}

/// Everything at `/api` but `/api/health` (which actix routes first, on
/// its own): a few public resources, tried first and never gated, then
/// the gated routes.
pub struct Api {
    pub public: Vec<ApiResource>,
    pub gated: GatedRoutes,
}

/// Registers the API at `/api` as one service.
impl HttpServiceFactory for Api {
    fn register(self, config: &mut AppService) {
        let mut rmap = ResourceMap::new(ResourceDef::root_prefix(PREFIX));
        let mut table = |resources: Vec<ApiResource>| -> Vec<(ResourceDef, Handlers)> {
            resources
                .into_iter()
                .map(|resource| {
                    let mut rdef = ResourceDef::new(resource.path);
                    rmap.add(&mut rdef, None);
                    (rdef, resource.methods)
                })
                .collect()
        };
        let public = table(self.public);
        let gated = table(self.gated.0);
        config.register_service(
            ResourceDef::root_prefix(PREFIX),
            None,
            ApiFactory(Rc::new((public, gated))),
            Some(Rc::new(rmap)),
        );
    }
}

type Handlers = Vec<(Method, Route)>;
type Table = Vec<(ResourceDef, Handlers)>;

/// Makes each worker's API service.
struct ApiFactory(Rc<(Table, Table)>);

type HandlerService = <Route as ServiceFactory<ServiceRequest>>::Service;

impl ServiceFactory<ServiceRequest> for ApiFactory {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Config = ();
    type Service = ApiService;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let tables = self.0.clone();
        Box::pin(async move {
            let (public, gated) = &*tables;
            Ok(ApiService {
                public: Routes::new(public).await?,
                gated: RequirePrincipalService::new(Routes::new(gated).await?),
            })
        })
    }
}

/// One worker's API: a public resource, else the gate and its routes.
pub struct ApiService {
    public: Routes,
    gated: RequirePrincipalService<Routes>,
}

impl Service<ServiceRequest> for ApiService {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Either<RouteFuture, Gated<<Routes as Service<ServiceRequest>>::Future>>;

    actix_web::dev::always_ready!();

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        match self.public.find(req.match_info_mut()) {
            Some(route) => Either::Left(route.call(req)),
            None => Either::Right(self.gated.call(req)),
        }
    }
}

/// One resource of a worker's gated routes.
struct ApiRoute {
    rdef: ResourceDef,
    /// The pattern when it has no parameter: matched by comparing the
    /// path, as actix does a static pattern (without building the path
    /// segments `capture_match_info` fills).
    fixed: Option<String>,
    /// The whole pattern, `/api` included, for the request metrics.
    pattern: MatchedPattern,
    methods: Vec<(Method, HandlerService)>,
}

impl ApiRoute {
    fn new(rdef: &ResourceDef, methods: Vec<(Method, HandlerService)>) -> Self {
        let pattern = rdef.pattern().unwrap_or_default();
        Self {
            rdef: rdef.clone(),
            fixed: (!pattern.contains('{')).then(|| pattern.to_owned()),
            pattern: MatchedPattern(format!("{PREFIX}{pattern}").into()),
            methods,
        }
    }

    /// Whether the path after `/api` is this resource's; when it is, the
    /// matched part is consumed and any parameters captured (one match,
    /// not a test and then a capture).
    fn take(&self, path: &mut Path<Url>) -> bool {
        match &self.fixed {
            Some(fixed) if path.unprocessed() == fixed => {
                let len = u16::try_from(fixed.len()).expect("a route pattern is short");
                path.skip(len);
                true
            }
            Some(_) => false,
            None => self.rdef.capture_match_info(path),
        }
    }
}

/// A table of one worker's routes, in the order they were added: the
/// first pattern that matches the path after `/api` takes the request.
pub struct Routes(Vec<ApiRoute>);

type Answer = Result<ServiceResponse<BoxBody>, actix_web::Error>;
type RouteFuture = Either<LocalBoxFuture<'static, Answer>, Ready<Answer>>;

impl Routes {
    async fn new(table: &Table) -> Result<Self, ()> {
        let mut routes = Vec::with_capacity(table.len());
        for (rdef, handlers) in table {
            let mut methods = Vec::with_capacity(handlers.len());
            for (method, route) in handlers {
                methods.push((method.clone(), route.new_service(()).await?));
            }
            routes.push(ApiRoute::new(rdef, methods));
        }
        Ok(Self(routes))
    }

    /// The route of the path after `/api`, its parameters captured.
    fn find(&self, path: &mut Path<Url>) -> Option<&ApiRoute> {
        self.0.iter().find(|route| route.take(path))
    }
}

impl ApiRoute {
    /// Calls the handler of the request's method, or answers 405.
    fn call(&self, req: ServiceRequest) -> RouteFuture {
        req.extensions_mut().insert(self.pattern.clone());
        match self
            .methods
            .iter()
            .find(|(method, _)| method == req.method())
        {
            Some((_, handler)) => Either::Left(handler.call(req)),
            None => Either::Right(ready(Ok(req.error_response(ApiError::MethodNotAllowed)))),
        }
    }
}

impl Service<ServiceRequest> for Routes {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = RouteFuture;

    actix_web::dev::always_ready!();

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        match self.find(req.match_info_mut()) {
            Some(route) => route.call(req),
            None => Either::Right(ready(Ok(req.error_response(ApiError::NotFound)))),
        }
    }
}
