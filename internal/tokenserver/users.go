package tokenserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do. Every user has exactly one.
type Role string

// The roles. A token grants the intersection of what the client asked for
// and what the role allows.
const (
	// RoleAdmin pulls, pushes and deletes in every repository (and may be
	// granted "*", all of them) and lists the catalog.
	RoleAdmin Role = "admin"
	// RolePush pulls and pushes.
	RolePush Role = "push"
	// RolePull only pulls.
	RolePull Role = "pull"
	// RoleDelete is the maintenance identity of the pruner: it lists the
	// catalog and the tags, reads manifests and configs (pull) and deletes
	// manifests, but never pushes. (Garbage collection reads the storage
	// directly and needs no token.)
	RoleDelete Role = "delete"
)

// permissions is what one role may do.
type permissions struct {
	repository []string // actions on any repository
	catalog    bool     // registry:catalog:*
}

var rolePermissions = map[Role]permissions{
	RoleAdmin:  {repository: []string{"pull", "push", "delete", "*"}, catalog: true},
	RolePush:   {repository: []string{"pull", "push"}},
	RolePull:   {repository: []string{"pull"}},
	RoleDelete: {repository: []string{"pull", "delete"}, catalog: true},
}

// Roles lists the valid role names, for help texts and errors.
func Roles() []Role { return []Role{RoleAdmin, RolePush, RolePull, RoleDelete} }

// user is one line of the users file.
type user struct {
	role Role
	hash []byte
}

// ParseUsers reads a users file: one user a line, "name:role:bcrypt-hash";
// blank lines and lines starting with # are ignored. A name is non-empty
// and has no colon or white space; role is admin, push, pull or delete; the
// hash is a bcrypt hash as htpasswd -B or Helm's htpasswd function write
// it. name (the file's name) only labels the errors, which name the line
// but never quote a hash.
func ParseUsers(name string, data []byte) (map[string]user, error) {
	users := map[string]user{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, ":", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: expected name:role:bcrypt-hash", name, n)
		}
		uname, role, hash := fields[0], Role(fields[1]), []byte(fields[2])
		_, knownRole := rolePermissions[role]
		switch {
		case uname == "" || strings.ContainsAny(uname, " \t"):
			return nil, fmt.Errorf("%s:%d: the user name must be non-empty, without spaces", name, n)
		case !knownRole:
			return nil, fmt.Errorf("%s:%d: user %q: role %q: expected one of %v", name, n, uname, role, Roles())
		}
		if _, err := bcrypt.Cost(hash); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: the password is not a bcrypt hash", name, n, uname)
		}
		if _, dup := users[uname]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is listed twice", name, n, uname)
		}
		users[uname] = user{role: role, hash: hash}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users", name)
	}
	return users, nil
}

// Users is the users file, loaded, with the cache of verified credentials.
// It is safe for concurrent use.
type Users struct {
	path  string
	cache *verifyCache

	mu     sync.RWMutex
	table  map[string]user
	digest [sha256.Size]byte
	// dummy is a hash at the file's highest cost that unknown users are
	// checked against, so that they take as long as known ones.
	dummy []byte
}

// CacheOptions bound the cache of successful verifications.
type CacheOptions struct {
	Size int           // entries; the oldest goes first when full
	TTL  time.Duration // how long one verification is trusted
}

// DefaultCache is the cache's default bounds.
var DefaultCache = CacheOptions{Size: 1024, TTL: 10 * time.Minute}

// LoadUsers reads and parses the users file at path.
func LoadUsers(path string, co CacheOptions) (*Users, error) {
	if co.Size <= 0 || co.TTL <= 0 {
		return nil, fmt.Errorf("cache size %d and TTL %s must be positive", co.Size, co.TTL)
	}
	c, err := newVerifyCache(co.Size, co.TTL)
	if err != nil {
		return nil, err
	}
	u := &Users{path: path, cache: c}
	if _, err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Reload re-reads the file. When its content changed it replaces the users
// and empties the cache; on error the users stay as they were.
func (u *Users) Reload() (changed bool, err error) {
	data, err := os.ReadFile(u.path)
	if err != nil {
		return false, fmt.Errorf("users file: %w", err)
	}
	digest := sha256.Sum256(data)
	u.mu.RLock()
	same := digest == u.digest && u.table != nil
	u.mu.RUnlock()
	if same {
		return false, nil
	}
	table, err := ParseUsers(u.path, data)
	if err != nil {
		return false, err
	}
	maxCost := bcrypt.MinCost
	for _, usr := range table {
		if c, _ := bcrypt.Cost(usr.hash); c > maxCost {
			maxCost = c
		}
	}
	u.mu.RLock()
	dummy := u.dummy
	u.mu.RUnlock()
	if c, err := bcrypt.Cost(dummy); err != nil || c != maxCost {
		if dummy, err = bcrypt.GenerateFromPassword([]byte("no such user"), maxCost); err != nil {
			return false, fmt.Errorf("users file %s: %w", u.path, err)
		}
	}
	u.mu.Lock()
	u.table, u.digest, u.dummy = table, digest, dummy
	u.cache.clear()
	u.mu.Unlock()
	return true, nil
}

// Len is the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.table)
}

// ErrBadCredentials is the one answer to a wrong user name or password:
// it never says which.
var ErrBadCredentials = errors.New("invalid user name or password")

// Authenticate checks name and password and returns the user's role. A
// credential verified within the cache's TTL is not checked with bcrypt
// again.
func (u *Users) Authenticate(name, password string) (Role, error) {
	key := u.cache.key(name, password)
	u.mu.RLock()
	usr, known := u.table[name]
	dummy := u.dummy
	gen := u.cache.generation()
	u.mu.RUnlock()
	if known && u.cache.hit(key) {
		return usr.role, nil
	}
	if !known {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return "", ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(usr.hash, []byte(password)) != nil {
		return "", ErrBadCredentials
	}
	u.cache.add(key, gen)
	return usr.role, nil
}

// Watch reloads the users file every interval and whenever reload receives
// (the command sends SIGHUP there), until ctx ends. Kubernetes updates a
// mounted Secret by swapping a symbolic link, which polling the content
// sees; a failed reload keeps the previous users and is logged.
func (u *Users) Watch(ctx context.Context, interval time.Duration, reload <-chan os.Signal, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-reload:
		}
		changed, err := u.Reload()
		switch {
		case err != nil:
			log.Error("users file not reloaded; the previous users stay", "file", u.path, "err", err)
		case changed:
			log.Info("users file reloaded; verified credentials forgotten", "file", u.path, "users", u.Len())
		}
	}
}
