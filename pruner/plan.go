package pruner

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
)

// Source lists what a registry holds; *Client is the real one.
type Source interface {
	Repositories(ctx context.Context) ([]string, error)
	Tags(ctx context.Context, repository string) ([]Tag, error)
}

// PlanOptions tune NewPlan.
type PlanOptions struct {
	// Now is the reference time for keepDays (default time.Now()).
	Now time.Time
	// Parallel bounds how many repositories are read at once (default 4).
	Parallel int
	// Registry names the registry in the plan's output.
	Registry string
}

// Plan is what a prune would do: every tag of every repository some rule
// applies to, kept or deleted, with the reason.
type Plan struct {
	Registry     string           `json:"registry,omitempty"`
	Now          time.Time        `json:"now"`
	Rules        []Rule           `json:"rules"`
	Repositories []RepositoryPlan `json:"repositories"`
	Summary      Summary          `json:"summary"`
}

// RepositoryPlan holds the decisions for one repository, sorted by tag.
type RepositoryPlan struct {
	Name      string     `json:"name"`
	Decisions []Decision `json:"tags"`
}

// Summary counts a plan.
type Summary struct {
	Repositories int `json:"repositories"`
	Tags         int `json:"tags"`
	Keep         int `json:"keep"`
	Delete       int `json:"delete"`
}

// Deletion is one tag the plan deletes.
type Deletion struct {
	Repository string
	Decision
}

// NewPlan reads the repositories the rules apply to and decides every tag.
// It changes nothing.
func NewPlan(ctx context.Context, src Source, rules Rules, opts PlanOptions) (*Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Parallel < 1 {
		opts.Parallel = 4
	}
	all, err := src.Repositories(ctx)
	if err != nil {
		return nil, err
	}
	var repos []string
	for _, r := range all {
		if rules.SelectsRepository(r) {
			repos = append(repos, r)
		}
	}
	sort.Strings(repos)
	p := &Plan{Registry: opts.Registry, Now: opts.Now.UTC(), Rules: rules.Rules, Repositories: make([]RepositoryPlan, len(repos))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for i, repo := range repos {
		g.Go(func() error {
			tags, err := src.Tags(gctx, repo)
			if err != nil {
				return err
			}
			p.Repositories[i] = RepositoryPlan{Name: repo, Decisions: rules.Evaluate(repo, tags, opts.Now)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p.Summary.Repositories = len(repos)
	for _, rp := range p.Repositories {
		for _, d := range rp.Decisions {
			p.Summary.Tags++
			if d.Action == Delete {
				p.Summary.Delete++
			} else {
				p.Summary.Keep++
			}
		}
	}
	return p, nil
}

// Deletions lists the tags the plan deletes, repository by repository.
func (p *Plan) Deletions() []Deletion {
	var out []Deletion
	for _, rp := range p.Repositories {
		for _, d := range rp.Decisions {
			if d.Action == Delete {
				out = append(out, Deletion{Repository: rp.Name, Decision: d})
			}
		}
	}
	return out
}

// WriteText prints the plan for people: a summary, then each repository's
// tags with the action and the reason.
func (p *Plan) WriteText(w io.Writer) error {
	reg := p.Registry
	if reg == "" {
		reg = "registry"
	}
	if _, err := fmt.Fprintf(w, "%s: %d repositories, %d tags: keep %d, delete %d (now %s)\n",
		reg, p.Summary.Repositories, p.Summary.Tags, p.Summary.Keep, p.Summary.Delete, p.Now.Format(time.RFC3339)); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, rp := range p.Repositories {
		fmt.Fprintf(tw, "%s\n", rp.Name)
		for _, d := range rp.Decisions {
			reason := d.Reason
			if len(d.SharedWith) > 0 {
				reason += " (manifest stays: also tagged " + strings.Join(d.SharedWith, ", ") + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.Action, d.Name, shortDigest(d.Digest), reason)
		}
	}
	return tw.Flush()
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
