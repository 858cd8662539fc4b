"""The platform's endpoints, one module per journey, each with a module-level `router` (ops also has
`metrics_router`); create_app includes them. Endpoints get the platform and the caller through the
dependencies of routes/dependencies.py."""
