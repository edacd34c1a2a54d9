"""Remote hosts: lab processes on real machines, reached over the user's own OpenSSH.

payload  the bootstrap on ssh's command line and the code sent after it
agent    the far end: runs there from memory, forks lab processes, relays their channels
ssh      ssh's argv and what its failures mean
link     one connection: ssh, the agent, the channels relayed over it
hosts    the lab's remote hosts: declared by `host NAME ssh DEST`, connected at the first spawn
view     a remote host as the session shows it (light: the TUI imports it before any lab)
"""
