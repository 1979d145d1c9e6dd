"""The 1min.ai client: the only code that knows 1min.ai's URLs, headers and error shapes."""
