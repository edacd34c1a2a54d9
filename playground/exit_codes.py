"""sockplay's exit codes, one set for every subcommand (README: Exit codes)."""

EXIT_OK = 0  # every step ran as stated (or there was nothing to check)
EXIT_DIVERGED = 1  # an outcome differed from the script's, or a lesson failed its check
EXIT_USAGE = 2  # the command could not run: a bad argument, an unreadable or malformed script, a refusal
