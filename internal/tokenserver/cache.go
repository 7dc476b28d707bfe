package tokenserver

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// verifyCache remembers successful password verifications: keys are
// HMAC-SHA256 of user and password under a key drawn at start, so neither the
// password nor a plain hash of it is held. It is bounded in entries (the
// oldest verification goes first) and in time.
type verifyCache struct {
	secret []byte
	size   int
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	gen     uint64
	entries map[[sha256.Size]byte]*list.Element
	order   *list.List // front: newest
}

type cacheEntry struct {
	key     [sha256.Size]byte
	expires time.Time
}

func newVerifyCache(size int, ttl time.Duration) (*verifyCache, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("cache key: %w", err)
	}
	return &verifyCache{
		secret: secret, size: size, ttl: ttl, now: time.Now,
		entries: map[[sha256.Size]byte]*list.Element{}, order: list.New(),
	}, nil
}

// key is the cache key of a credential: the HMAC of the name's length, the
// name and the password, so no two credentials share an input.
func (c *verifyCache) key(name, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.secret)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(name))))
	m.Write([]byte(name))
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// hit reports whether key was verified within the TTL.
func (c *verifyCache) hit(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return false
	}
	if c.now().After(el.Value.(*cacheEntry).expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return false
	}
	return true
}

// generation identifies the cache's current contents; clear starts a new one.
func (c *verifyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add remembers key, unless the cache was cleared since gen was read (the
// verification was against a users file that is gone).
func (c *verifyCache) add(key [sha256.Size]byte, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	expires := c.now().Add(c.ttl)
	if el, ok := c.entries[key]; ok {
		el.Value.(*cacheEntry).expires = expires
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, expires: expires})
}

// clear forgets every verification.
func (c *verifyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = map[[sha256.Size]byte]*list.Element{}
	c.order.Init()
}

// len is the number of remembered verifications.
func (c *verifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
