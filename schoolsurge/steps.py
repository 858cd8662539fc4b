"""Names shared by the personas that record results and the report that reads them."""

# The whole SSO login as a person feels it (form, credentials, ticket, retries) is recorded as one extra
# statistics entry of this type, beside the HTTP requests it is made of.
LOGIN_FLOW_TYPE = "FLOW"
LOGIN_FLOW_NAME = "login"
