package sim

import (
	"errors"
	"testing"
)

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Before the last two days (training's test days), the dense world
	// shows each reel of its catalogue 30 times or more on average.
	if c, _ := Preset("dense"); c.SessionsPerDay*c.SessionLength*float64(c.Users)*float64(c.Days-2) < 30*float64(c.Reels) {
		t.Fatalf("dense: %v impressions a day over %d reels and %d days", c.SessionsPerDay*c.SessionLength*float64(c.Users), c.Reels, c.Days)
	}
	if _, err := Preset("nope"); !errors.Is(err, ErrConfig) {
		t.Fatalf("an unknown preset: %v", err)
	}
}
