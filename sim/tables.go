package sim

import (
	"slices"
	"strconv"
)

// Country is one of the world's countries.
type Country struct {
	Code      string  `json:"code"`
	OffsetMin int     `json:"offset_min"` // UTC offset of local time, minutes
	Language  int     `json:"language"`   // index into Languages
	Weight    float64 `json:"weight"`     // share of users
}

// Countries returns the world's countries (a copy: the tables are fixed).
func Countries() []Country { return slices.Clone(countryTable) }

// Languages returns the world's languages, in the order Country.Language
// indexes.
func Languages() []string { return slices.Clone(languageTable) }

// Devices returns the world's devices.
func Devices() []string { return slices.Clone(deviceTable) }

// AgeBuckets returns the world's age buckets.
func AgeBuckets() []string { return slices.Clone(ageTable) }

// The fixed tables of every world (written to world.json too).
var (
	countryTable = []Country{
		{"US", -300, 0, 0.18}, {"BR", -180, 1, 0.11}, {"IN", 330, 2, 0.17}, {"ID", 420, 3, 0.08},
		{"GB", 0, 0, 0.05}, {"DE", 60, 4, 0.05}, {"FR", 60, 5, 0.05}, {"MX", -360, 6, 0.07},
		{"JP", 540, 7, 0.06}, {"TR", 180, 8, 0.05}, {"PH", 480, 0, 0.06}, {"NG", 60, 0, 0.07},
	}
	languageTable = []string{"en", "pt", "hi", "id", "de", "fr", "es", "ja", "tr"}
	deviceTable   = []string{"ios", "android-high", "android-low", "web"}
	ageTable      = []string{"13-17", "18-24", "25-34", "35-44", "45-54", "55+"}

	deviceWeights = []float64{0.35, 0.3, 0.28, 0.07}
	ageWeights    = []float64{0.1, 0.3, 0.27, 0.16, 0.1, 0.07}

	// diurnal is the relative rate of sessions and uploads per local hour.
	diurnal = [24]float64{0.5, 0.3, 0.18, 0.12, 0.1, 0.15, 0.35, 0.6, 0.75, 0.7, 0.7, 0.8,
		1.0, 0.95, 0.8, 0.75, 0.8, 0.95, 1.1, 1.3, 1.5, 1.6, 1.4, 0.9}
)

// topicVocab names the first topics and gives each a few words; further
// topics get made-up words.
var topicVocab = []struct {
	name  string
	words []string
}{
	{"cooking", []string{"recipe", "pasta", "garlic", "kitchen", "spicy", "bake"}},
	{"football", []string{"goal", "match", "striker", "league", "dribble", "penalty"}},
	{"dance", []string{"choreo", "moves", "groove", "trend", "hiphop", "ballet"}},
	{"comedy", []string{"prank", "skit", "funny", "joke", "laugh", "parody"}},
	{"pets", []string{"puppy", "kitten", "cute", "paws", "rescue", "bark"}},
	{"travel", []string{"beach", "hotel", "roadtrip", "island", "backpack", "sunset"}},
	{"fitness", []string{"workout", "gym", "squat", "cardio", "gains", "yoga"}},
	{"beauty", []string{"makeup", "skincare", "lipstick", "glow", "tutorial", "nails"}},
	{"fashion", []string{"outfit", "style", "thrift", "sneakers", "haul", "streetwear"}},
	{"gaming", []string{"gameplay", "speedrun", "boss", "console", "clutch", "stream"}},
	{"music", []string{"cover", "guitar", "beat", "vocals", "concert", "remix"}},
	{"diy", []string{"craft", "glue", "build", "woodwork", "upcycle", "paint"}},
	{"science", []string{"experiment", "physics", "chemistry", "space", "atoms", "lab"}},
	{"tech", []string{"gadget", "unboxing", "phone", "laptop", "review", "setup"}},
	{"cars", []string{"engine", "drift", "supercar", "detailing", "turbo", "garage"}},
	{"news", []string{"breaking", "update", "report", "today", "politics", "world"}},
	{"finance", []string{"stocks", "budget", "crypto", "savings", "invest", "money"}},
	{"art", []string{"drawing", "sketch", "canvas", "watercolor", "portrait", "ink"}},
	{"nature", []string{"forest", "wildlife", "mountain", "river", "birds", "bloom"}},
	{"parenting", []string{"baby", "toddler", "mom", "dad", "family", "bedtime"}},
	{"education", []string{"lesson", "study", "history", "math", "facts", "learn"}},
	{"basketball", []string{"dunk", "hoops", "threepointer", "court", "buzzer", "nba"}},
	{"anime", []string{"manga", "cosplay", "episode", "waifu", "studio", "opening"}},
	{"food", []string{"streetfood", "mukbang", "tasting", "burger", "ramen", "dessert"}},
	{"motivation", []string{"mindset", "goals", "hustle", "habits", "discipline", "quote"}},
	{"home", []string{"decor", "cleaning", "organize", "interior", "plants", "cozy"}},
	{"extreme", []string{"skate", "parkour", "surf", "bmx", "stunt", "freefall"}},
	{"magic", []string{"trick", "illusion", "cards", "reveal", "sleight", "mind"}},
	{"asmr", []string{"whisper", "tapping", "relax", "sounds", "tingles", "calm"}},
	{"cricket", []string{"wicket", "sixer", "bowler", "innings", "batting", "ipl"}},
	{"movies", []string{"trailer", "scene", "actor", "review", "spoiler", "cinema"}},
	{"lifehacks", []string{"hack", "tips", "tricks", "easy", "save", "clever"}},
}

var fillerWords = []string{"wow", "new", "watch", "best", "today", "omg", "must", "see", "part2", "viral"}

var syllables = []string{"ka", "lo", "mi", "re", "nu", "sa", "to", "vi", "de", "ba", "po", "zu"}

// topicNames and topicWords return the vocabulary of n topics.
func topicTables(n int) (names []string, words [][]string) {
	names = make([]string, n)
	words = make([][]string, n)
	for t := range n {
		if t < len(topicVocab) {
			names[t] = topicVocab[t].name
			words[t] = topicVocab[t].words
			continue
		}
		names[t] = "topic" + strconv.Itoa(t)
		ws := make([]string, 6)
		for i := range ws {
			k := t*6 + i
			ws[i] = syllables[k%12] + syllables[(k/12)%12] + syllables[(k/144)%12] + strconv.Itoa(t)
		}
		words[t] = ws
	}
	return names, words
}
