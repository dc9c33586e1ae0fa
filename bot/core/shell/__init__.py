"""Shell words of buildspec commands and Dockerfile RUNs: tokenize, classify, rewrite `docker build`."""
