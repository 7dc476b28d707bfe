// Package nodes talks to the hosts of a cluster over SSH.
//
// # Connecting
//
// A Config says how to reach one host: address and port, user, credentials
// (a private key file, optionally encrypted; the ssh-agent at
// $SSH_AUTH_SOCK; a password), how to check its host key, an optional
// bastion (one jump host with its own credentials and host key), and the
// sudo password if the user needs one. Secrets are Secret functions
// (EnvSecret, PromptSecret, EnvOrPrompt) read only when needed, so a
// Config can be printed or logged safely.
//
// Dial opens one host; Connect opens many in parallel, bounded, and returns
// every host's outcome:
//
//	hosts, errs := nodes.Connect(ctx, cfgs, 8, nodes.WithLogger(log), nodes.WithOutput(os.Stdout))
//
// Host keys are always verified. With HostKeyPolicy Strict an unknown or
// changed key is refused and the error shows the key's SHA256 fingerprint
// and the exact known_hosts line to add. AcceptNew appends unknown keys to
// the known_hosts file (plain, not hashed, under a file lock) and still
// refuses changed ones. A PinnedHostKey accepts that key only. When
// known_hosts holds keys for a host, only their algorithms are offered, so
// a host with several keys presents one that can be checked.
//
// Connecting retries network failures with exponential backoff and jitter
// (Retry, WithRetry), never authentication or host-key failures.
//
// # Failures
//
// Errors are *Error values that wrap a failure class, for errors.Is:
// ErrHostKey (with a *HostKeyError inside), ErrAuth, ErrUnreachable,
// ErrTimeout, ErrSudo, ErrConfig. A command that exits non-zero is an
// *ExitError. No error, log record or streamed line contains a password,
// passphrase or sudo password.
//
// # Running commands
//
// A Host keeps one SSH connection and runs concurrent commands over it
// (at most WithMaxSessions sessions at once; a dead connection is redialled
// for the next command, a command cut off is never re-run). Host.Run
// streams output line by line, prefixed "[name] ", to the writer given by
// WithOutput or Stream, and returns it captured in an Output. The context
// bounds a command: when it ends, the remote command and the processes it
// started get SIGTERM (sent by kill over another session for a root login,
// whose commands sshd does not signal) and the session is closed.
//
// Host.Sudo (or Run with AsRoot) runs a command as root: directly for
// root, else through `sudo -n`, or `sudo -S` when a sudo password is
// configured. The password is written to sudo's standard input only after
// sudo has prompted for it, never to the command and never on a command
// line; a wrong password ends the command with ErrSudo.
//
// Host.Upload writes a file atomically (temporary file in the same
// directory, sha256 checked, then renamed) and skips the transfer when the
// file already has the same content. Host.UploadFile does the same for a
// local file whose sha256 is known (a bundle manifest's), streamed from
// disk and checked against that sha256 as it is read.
//
// ReadFile (bounded to 4 MiB), Exists, MkdirAll and Sha256 work on
// remote files as root, with paths quoted for the shell, output never
// streamed, and errors naming the host and the path.
//
// Host.Facts gathers, once per host, what later phases decide on: OS and
// version, architecture, kernel, cgroup version, hostname, machine-id,
// systemd, swap, kubelet/kubeadm versions and kubeconfigs present,
// listening TCP ports, CPUs, memory, clock skew, and whether sudo works.
//
// ForEach runs a function on many hosts, bounded, and returns one Result
// per host in order, failures and panics included.
//
// Package internal/sshtest starts real OpenSSH servers and in-process SSH
// servers for tests.
package nodes
