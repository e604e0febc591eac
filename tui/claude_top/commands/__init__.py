"""One runner per subcommand; `cli` parses the arguments and calls them."""
