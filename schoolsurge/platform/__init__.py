"""The embedded reference school platform: a CAS-like SSO and ENT API that the load generator targets."""
