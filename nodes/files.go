package nodes

// Size limits of the local files this package reads, each opened with
// boundedfile.Open: a regular file of at most this size.
const (
	maxKeyFile        = 1 << 20  // a private key: a few KiB
	maxKnownHostsFile = 16 << 20 // known_hosts: one short line per host key
)
