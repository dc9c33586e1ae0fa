"""All GitHub I/O: the Gateway Protocol, the PyGithub/GraphQL client behind it, App credentials."""
