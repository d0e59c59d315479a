//! Command execution: a session per connection parses RESP and runs commands.
