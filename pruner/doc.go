// Package pruner deletes old image tags from a distribution (CNCF) registry
// by rules, and runs the garbage collection that frees their storage in the
// only safe order.
//
// # Rules file
//
//	rules:
//	  - repositories: ["app/*"]      # globs (path.Match: * stays within one path segment); empty = all
//	    match: ["^PR-"]              # tag regexes (Go RE2, unanchored); empty = all tags
//	    ignore: ["^keep-"]           # tag regexes; ignore always wins over match
//	    keepLatest: 10               # keep the 10 newest
//	    keepSemver: {highest: 20}    # keep the 20 highest semantic versions ({} = all of them)
//	    keepDays: 14                 # keep what was created in the last 14 days
//
// Every rule needs at least one keep setting; keepLatest: 0 keeps nothing of
// what the rule selects. Errors name the line and the field
// ("rules.yaml:7: rules[2].keepLatest: must be a whole number").
//
// # Which tags a rule selects
//
// A rule selects a tag when the repository matches one of its globs (or it
// has none), the tag matches one of its match regexes (or it has none), and
// none of its ignore regexes matches it: ignore wins over match, even over
// a match that names "latest". Ignore works within its own rule; another
// rule may still select the tag (to protect a tag from every rule, ignore
// it in each). The tag "latest" is protected: a rule selects it only when
// one of its match patterns names it explicitly (contains the word
// "latest" and matches it, e.g. "^latest$"; ".*" does not).
//
// # What a rule keeps
//
// A rule keeps a selected tag when any of its keep settings keeps it (the
// settings of one rule are a union). keepLatest and keepSemver highest rank
// only the tags this rule selects in this repository:
//
//   - keepLatest N: the N newest selected tags, by the image's creation time
//     (the config's "created"; for a multi-arch index its
//     org.opencontainers.image.created annotation, else its newest child).
//     Tags without a usable creation time (missing, or at/before the Unix
//     epoch as reproducible builds write) rank after those with one, ordered
//     by push order when the source knows it. The registry HTTP API does not
//     expose push order, so a tag from a registry whose age is unknown is
//     never deleted by keepLatest: it is kept, and the plan says so.
//   - keepSemver: tags that are valid semantic versions, MAJOR.MINOR.PATCH
//     with optional -prerelease and +build and an optional leading "v"
//     (1.2.3, 1.10.0, v2.0.0-rc.1; not 1.2, PR-123, latest or a git SHA).
//     With highest N, only the N greatest by semver precedence
//     (1.10.0 > 1.9.0 > 1.9.0-rc.1).
//   - keepDays N: tags created within N*24h before the plan's time. A tag
//     whose creation time is unknown is kept.
//
// # How rules combine
//
// Like Harbor's retention, a tag survives if any rule that selects it keeps
// it. A tag selected by at least one rule and kept by none is deleted (the
// plan lists every selecting rule and why it did not keep the tag). A tag no
// rule selects is untouched. Repositories no rule applies to are not even
// read.
//
// # Tags that share a digest
//
// Deletion is by tag name (DELETE /v2/<name>/manifests/<tag>, which
// distribution v3 implements as "untag"): the manifest and every other tag
// on it stay, so a digest is never deleted while a kept tag points at it.
// The manifest becomes untagged when its last tag goes, and
// `garbage-collect --delete-untagged` removes it and the blobs only it used.
// On an older registry that answers 405/UNSUPPORTED to a tag delete, the
// manifest is deleted by digest only when the plan deletes every tag on it;
// other tags on such a digest are skipped and reported.
//
// # Signatures, attestations, SBOMs
//
// Tags of the form sha256-<hex>.sig, .att and .sbom (cosign's tag scheme)
// are not judged by the rules: they follow their subject, the manifest
// sha256:<hex> in the same repository. They are kept when any tag on the
// subject is kept and deleted when every tag on it is deleted; when no tag
// of the repository points at the subject they are left alone. They are
// deleted before their subject's tags, and a subject whose referrer could
// not be deleted is kept, so referrers are never orphaned.
//
// # Multi-arch images
//
// An index is judged like any tag. Deleting its tag leaves the index and its
// per-platform manifests untagged; garbage collection with
// --delete-untagged removes them (children of a kept index are kept).
//
// # Running it
//
// NewClient, LoadRules or ParseRules, NewPlan (reads only; prints as text
// with Plan.WriteText or as JSON, every tag with its action and reason),
// then Execute, which deletes with bounded parallelism. Guards:
//
//   - MaxDeletions: when the plan deletes more tags than this (referrer
//     tags count), Execute refuses the whole plan with ErrTooManyDeletions
//     before it deletes anything; 0 means no limit.
//   - DryRun: Execute sends no request at all and reports every planned
//     deletion as would-delete.
//
// Credentials never appear in plans, results or errors.
//
// # Garbage collection
//
// CollectGarbage runs prune (through the API) -> registry read-only ->
// garbage-collect --delete-untagged -> delete the Redis keys blobs::* and
// repository::* (SCAN + UNLINK in batches, never FLUSHALL) -> read-write.
// Without the flush Redis still describes swept blobs: a push then skips a
// layer because HEAD says it exists, and pulls fail with "blob unknown".
//
// A stale cache silently corrupts later pushes while a read-only registry
// still serves every pull, so the failure policy is:
//
//   - prune fails: stop, the registry was never read-only;
//   - the switch to read-only fails, or garbage-collect reports that it did
//     not start (ErrGarbageCollectNotStarted): nothing was deleted, switch
//     back to read-write;
//   - garbage-collect fails otherwise: it may have deleted blobs, so flush
//     the cache anyway and stay read-only;
//   - the flush fails: stay read-only.
//
// Every failure is an error (the job fails). When the registry is left
// read-only the error says so and how to recover: fix the cause and run the
// garbage collection again, or make sure no garbage-collect still runs,
// delete blobs::* and repository::* by hand and switch to read-write. The
// parts that depend on where the registry runs (read-only switch, running
// the GC) come through the Maintenance interface.
package pruner
