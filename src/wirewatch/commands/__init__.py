"""What each command does. cli.py parses the command line and calls one of these."""
