package sim

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// User is a user of the world. Authors are users too.
type User struct {
	ID        int64
	Country   string // ISO code, see Countries
	Language  string // see Languages
	AgeBucket string // see AgeBuckets
	Device    string // see Devices
	Followees int    // initial follow edges out of this user

	// Activity is the user's activity level (mean 1): their expected
	// sessions per day scale with it. Latent: the truth, not a feature.
	Activity float64
	// Interest is the stable core of the user's log-affinity per topic;
	// World.Interest gives a day's interest with its drift. Latent: the
	// truth, not a feature.
	Interest []float32
}

// Reel is a reel of the catalogue.
type Reel struct {
	ID          int64
	Author      int64  // the uploading user's id
	Upload      int64  // upload time, ms since the Unix epoch
	Duration    int    // seconds, 5..90
	Language    string // the author's language
	Description string // words of its topics, e.g. "#cooking pasta garlic wow"

	// Topics and TopicWeights are the reel's topic mix (weights sum to 1).
	// Latent: the truth, not a feature.
	Topics       []int
	TopicWeights []float64
	// Quality is the reel's intrinsic appeal (standard normal). Latent:
	// the truth, not a feature.
	Quality float64
}

// Author is a user seen as an author.
type Author struct {
	ID        int64
	Followers int // initial followers
	Reels     int // reels uploaded, initial catalogue and simulated days together

	// Quality is the author's appeal (standard normal) and Focus their two
	// favourite topics, which most of their reels are about. Latent: the
	// truth, not a feature.
	Quality float64
	Focus   [2]int
}

// Edge is a follow edge: Follower follows Followee.
type Edge struct{ Follower, Followee int64 }

// Config returns the world's configuration.
func (w *World) Config() Config { return w.cfg }

// NumUsers returns the number of users; their ids are 1..NumUsers.
func (w *World) NumUsers() int { return len(w.users) }

// NumReels returns the number of reels, the initial catalogue and the
// uploads of the simulated days; ids are 1..NumReels in upload order.
func (w *World) NumReels() int { return len(w.reels) }

// InitialReels returns the number of reels uploaded before Start: ids
// 1..InitialReels.
func (w *World) InitialReels() int { return w.initialReels }

// Available returns the number of reels uploaded at or before t (ms): the
// reels available at t are ids 1..Available(t).
func (w *World) Available(t int64) int64 { return int64(w.available(t)) }

// Start returns the start of the first simulated day, ms since the epoch.
func (w *World) Start() int64 { return w.startMS }

// HasUser reports whether id is a user of the world.
func (w *World) HasUser(id int64) bool { return id >= 1 && id <= int64(len(w.users)) }

// HasReel reports whether id is a reel of the world.
func (w *World) HasReel(id int64) bool { return id >= 1 && id <= int64(len(w.reels)) }

// User returns user id; ok is false for an unknown id.
func (w *World) User(id int64) (u User, ok bool) {
	if !w.HasUser(id) {
		return User{}, false
	}
	r := &w.users[id-1]
	T := w.cfg.Topics
	core := make([]float32, T)
	copy(core, w.interest[(id-1)*int64(w.stride):])
	return User{
		ID: id, Country: w.countries[r.country].Code, Language: languageTable[r.lang],
		AgeBucket: ageTable[r.age], Device: deviceTable[r.device],
		Followees: int(w.followOff[id] - w.followOff[id-1]),
		Activity:  float64(r.activity), Interest: core,
	}, true
}

// Users returns every user, in id order (index = id-1).
func (w *World) Users() []User {
	out := make([]User, len(w.users))
	for i := range out {
		out[i], _ = w.User(int64(i + 1))
	}
	return out
}

// Reel returns reel id; ok is false for an unknown id.
func (w *World) Reel(id int64) (Reel, bool) {
	if !w.HasReel(id) {
		return Reel{}, false
	}
	r := &w.reels[id-1]
	out := Reel{
		ID: id, Author: int64(r.author), Upload: r.upload, Duration: int(r.dur),
		Language: languageTable[r.lang], Description: string(w.description(nil, id)), Quality: float64(r.quality),
	}
	for j := range 3 {
		if r.weight[j] != 0 {
			out.Topics = append(out.Topics, int(r.topic[j]))
			out.TopicWeights = append(out.TopicWeights, float64(r.weight[j])/255)
		}
	}
	return out, true
}

// Reels returns every reel in id order (index = id-1). It builds all of
// them: for large worlds prefer Reel(id).
func (w *World) Reels() []Reel {
	out := make([]Reel, len(w.reels))
	for i := range out {
		out[i], _ = w.Reel(int64(i + 1))
	}
	return out
}

// Author returns user id as an author; ok is false for an unknown id.
func (w *World) Author(id int64) (Author, bool) {
	if !w.HasUser(id) {
		return Author{}, false
	}
	u := &w.users[id-1]
	return Author{ID: id, Followers: int(u.followers), Reels: int(u.reels), Quality: float64(u.authorQ),
		Focus: [2]int{int(u.focus[0]), int(u.focus[1])}}, true
}

// Authors returns the users with at least one reel, in id order.
func (w *World) Authors() []Author {
	var out []Author
	for i := range w.users {
		if w.users[i].reels > 0 {
			a, _ := w.Author(int64(i + 1))
			out = append(out, a)
		}
	}
	return out
}

// NumFollows returns the number of initial follow edges.
func (w *World) NumFollows() int { return len(w.followTo) }

// Follows returns the initial follow graph, by follower then followee.
func (w *World) Follows() []Edge {
	out := make([]Edge, 0, len(w.followTo))
	for u := range w.users {
		for _, a := range w.followTo[w.followOff[u]:w.followOff[u+1]] {
			out = append(out, Edge{int64(u + 1), int64(a)})
		}
	}
	return out
}

// Followees appends the authors user initially follows to dst, ascending.
func (w *World) Followees(user int64, dst []int64) []int64 {
	if !w.HasUser(user) {
		return dst
	}
	for _, a := range w.followTo[w.followOff[user-1]:w.followOff[user]] {
		dst = append(dst, int64(a))
	}
	return dst
}

// TopicName returns the name of topic t ("" if out of range).
func (w *World) TopicName(t int) string {
	if t < 0 || t >= len(w.topicNames) {
		return ""
	}
	return w.topicNames[t]
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Embedding returns reel's content embedding (EmbedDim values of unit
// norm), or nil for an unknown reel. In a world from Open it is a read-only
// view into the mapped reels.fvecs: do not modify it. In the world a
// policy gets from Generate it is computed from the reel's seed (the same
// values the file holds).
func (w *World) Embedding(reel int64) []float32 {
	if !w.HasReel(reel) {
		return nil
	}
	D := w.cfg.EmbedDim
	if w.emb == nil {
		v := make([]float32, D)
		w.embedInto(v, reel)
		return v
	}
	off := (reel-1)*int64(4+4*D) + 4
	b := w.emb[off : off+int64(4*D)]
	if littleEndian {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), D)
	}
	v := make([]float32, D)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// Close releases the mapped embedding file. The World must not be used after.
func (w *World) Close() error {
	if w.embRelease == nil {
		return nil
	}
	err := w.embRelease()
	w.emb, w.embRelease = nil, nil
	return err
}
