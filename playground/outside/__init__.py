"""Outside programs in the lab: `spawn NAME exec [--trace] COMMAND ARG...`, started in the lab's network,
ended with it, and (with --trace) watched through strace, each socket call an observed line."""
