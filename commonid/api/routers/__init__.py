"""HTTP routers: thin, each delegating to commonid.flows."""
