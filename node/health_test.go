package node

import (
	"testing"
	"time"
)

// The prober calls kickHealth on its own goroutine: it must return at
// once even while a fold and publish hold the health lock, so that
// probing never waits for a publish, and a burst of kicks leaves one
// pending fold, not one each.
func TestKickHealthNeverBlocks(t *testing.T) {
	n := &Node{healthKick: make(chan struct{}, 1)}
	n.healthMu.Lock() // a publish in progress
	defer n.healthMu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			n.kickHealth()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("kickHealth blocked while the health lock was held")
	}
	if got := len(n.healthKick); got != 1 {
		t.Fatalf("%d folds pending after a burst of kicks, want 1", got)
	}
	if n.kickedAt.Load() == 0 {
		t.Fatal("the first kick's time was not recorded")
	}
}
