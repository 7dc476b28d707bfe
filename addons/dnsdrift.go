package addons

import "context"

// Drift reads the record as Ensure does, changing nothing, and says what
// Ensure would write: "" when the record is up to date. An error says why
// Ensure could not manage it (no zone, a CNAME, an A record another owner
// marks, a Route53 failure).
func (d DNS) Drift(ctx context.Context) (string, error) {
	c, err := d.planEnsure(ctx)
	if err != nil || c == nil {
		return "", err
	}
	return c.what, nil
}
