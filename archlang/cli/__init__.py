"""``archc``, the command line: commands, the click plumbing, inputs and outputs."""
