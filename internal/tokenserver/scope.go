package tokenserver

import (
	"fmt"
	"slices"
	"strings"
)

// ResourceActions is one entry of a token's access claim, and one scope a
// client asks for: scope "repository:library/alpine:pull,push" is Type
// "repository", Name "library/alpine", Actions pull and push.
type ResourceActions struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String is the scope syntax, type[(class)]:name:actions.
func (r ResourceActions) String() string {
	t := r.Type
	if r.Class != "" {
		t += "(" + r.Class + ")"
	}
	return t + ":" + r.Name + ":" + strings.Join(r.Actions, ",")
}

// ParseScopes parses scope values. Each value may hold several scopes
// separated by spaces (the OAuth2 form does so; GET repeats the parameter).
// The name sits between the first and the last colon, so a name with a
// registry host and port ("repository:host:5000/app:pull") parses.
func ParseScopes(values []string) ([]ResourceActions, error) {
	var out []ResourceActions
	for _, v := range values {
		for _, s := range strings.Fields(v) {
			first, last := strings.Index(s, ":"), strings.LastIndex(s, ":")
			if first <= 0 || last == first || last == first+1 {
				return nil, fmt.Errorf("scope %q: expected type:name:actions", s)
			}
			ra := ResourceActions{Type: s[:first], Name: s[first+1 : last]}
			if t, class, ok := strings.Cut(ra.Type, "("); ok {
				if !strings.HasSuffix(class, ")") || t == "" {
					return nil, fmt.Errorf("scope %q: expected type(class):name:actions", s)
				}
				ra.Type, ra.Class = t, strings.TrimSuffix(class, ")")
			}
			for _, a := range strings.Split(s[last+1:], ",") {
				if a != "" && !slices.Contains(ra.Actions, a) {
					ra.Actions = append(ra.Actions, a)
				}
			}
			out = append(out, ra)
		}
	}
	return out, nil
}

// Grant is the access a role gets for the requested scopes: for each, the
// actions both asked for and allowed (the specification's rule); scopes
// with none left are dropped. Repositories: the role's actions;
// registry:catalog: "*" for the roles that list the catalog; any other
// resource type: nothing.
func Grant(role Role, requested []ResourceActions) []ResourceActions {
	perm := rolePermissions[role]
	granted := []ResourceActions{}
	for _, req := range requested {
		var allowed []string
		switch {
		case req.Type == "repository":
			allowed = perm.repository
		case req.Type == "registry" && req.Name == "catalog" && perm.catalog:
			allowed = []string{"*"}
		}
		var actions []string
		for _, a := range req.Actions {
			if slices.Contains(allowed, a) {
				actions = append(actions, a)
			}
		}
		if len(actions) == 0 {
			continue
		}
		if i := slices.IndexFunc(granted, func(g ResourceActions) bool {
			return g.Type == req.Type && g.Class == req.Class && g.Name == req.Name
		}); i >= 0 {
			for _, a := range actions {
				if !slices.Contains(granted[i].Actions, a) {
					granted[i].Actions = append(granted[i].Actions, a)
				}
			}
			continue
		}
		granted = append(granted, ResourceActions{Type: req.Type, Class: req.Class, Name: req.Name, Actions: actions})
	}
	return granted
}
