// Package features is reelrank's feature store: it applies the event log
// (impressions, watches, skips, likes, comments, shares, follows, uploads)
// to decayed counters per reel, author and user, and answers feature
// requests "as of" a time. The same code computes the features of a
// serving request and of a training row, so training and serving cannot
// drift apart.
//
// # The catalogue
//
// A Store starts empty. The catalogue is put in first: users' profiles
// (PutUser), authors' follower counts (PutAuthor), the follow graph
// (PutFollow) and reels with their content embeddings (PutReel). When
// reels carry no category, FitCategories clusters the embeddings by
// k-means into Config.Categories categories and keeps the centroids as
// part of the store's state; later reels join their nearest centroid.
//
// # Events
//
// Apply takes a batch of eventlog.Events; ApplyLog reads a log file and
// records where it stopped. Every counter is kept over several decay
// windows (default 1 hour, 1 day, 7 days): an event of age a counts
// exp(-a/w). The counters use forward decay — an event at t adds
// exp((t-L)/w) for a landmark L, and a reading at t multiplies by
// exp(-(t-L)/w) — so applying an event costs one exponential per window
// whatever it touches, a request pays the exponentials once for all its
// candidates, and the counters do not depend on the order the events came
// in. The landmark moves forward (an O(state) rescale) every 50 hours of
// event time with the default windows.
//
// Ratios (watch, watch-through, like, comment, share and follow rates) are
// smoothed toward the global rate with Config.PriorStrength
// pseudo-impressions, so a reel with two impressions is not "100% liked".
//
// # Features
//
// Features fills a Request: a vector for the user and the context, and for
// each candidate reel a reel vector and a user×reel cross vector, plus the
// content embeddings when asked. Spec names every feature in order:
//
//   - user: profile one-hots (country, language, age bucket, device), the
//     user's rates per window, follows, per category the decayed
//     impressions and the smoothed watch-through rate, the watch-history
//     embedding (decayed mean of watched reels' embeddings, weighted by
//     the fraction watched), the session (position, time since its start,
//     its watch-through rate, the last reels' categories) and the time of
//     day and week;
//   - reel: its rates per window, whether it is known, its age, freshness
//     and duration, its author's followers and rates per window, its
//     category;
//   - cross: the user's watch-through rate and impressions in the reel's
//     category, whether the user follows the author, the dot product and
//     cosine of the history embedding and the reel's embedding, and
//     whether the session's last reel had the same category.
//
// Unknown users and reels get cold-start values (global rates, zero
// counts, the "other" profile slots or the request's Context.Profile), not
// errors. A request whose time lies more than Config.Tolerance before the
// newest applied event fails with ErrPast: the store keeps the present.
//
// # Training rows, point in time
//
// Replay applies a log in order and, for each impression, computes the
// features as of the impression's time before applying it, then attaches
// the labels (watch or skip, fraction watched, like, comment, share,
// follow) that follow within ReplayOptions.LabelWindow. A row therefore
// holds nothing from after its own event; the tests plant future events
// and check that no earlier row changes.
//
// # Candidate sources
//
// Sources proposes candidates beside an embedding index, the same for
// serving and for offline evaluation: reels popular in the viewer's
// country (region), popular among reels in the viewer's language
// (language), recent reels of the authors the viewer follows (followed),
// and popular overall (popular), in that order, each best first up to its
// quota; a reel two sources propose counts under the first.
//
// Popularity is the decayed watch-throughs over the window nearest a day
// (of the default windows, 1 day). Region counts are new counters per
// (country, reel) of the watch-throughs of viewers from that country, as
// the user table gives it when the event is applied; language popularity
// is the overall count restricted to reels in the viewer's language. The
// last ("other or unknown") country and language slots have no list.
// Since every forward-decayed count is read with the same factor at a
// time, the order of reels does not depend on the request's time, and
// the counts only grow as events are applied: each list (per country, per
// language, overall) is kept incrementally, on every watch-through, as the
// first SourceListLen reels by count, ties to the reel the store saw
// first — exactly what a full sort would give, never a scan of the
// catalogue. A landmark move (which also drops per-country counts under
// 0.001) and a snapshot load rebuild the lists from the counts; a reel
// whose language changes leaves its old list by a rebuild of that one.
//
// Followed takes, per followed author, the FollowedPerAuthor newest reels
// uploaded within FollowedWindow (90 days) up to the request's time; those
// uploaded within FollowedFresh (1 day) come first, newest first, then the
// older ones by decayed watch-throughs. Reels not yet uploaded at the
// request's time, or whose author the store does not know, never appear;
// the store knows no deletions, so callers exclude deleted reels through
// Sources' exclude.
//
// # Concurrency and snapshots
//
// Writers apply batches under one lock; requests share it, so applying
// events and answering requests run concurrently. SaveSnapshot writes the
// whole state (versioned, CRC-32C checked, to a temporary file renamed
// into place) with the log checkpoint; LoadSnapshot restores it, and
// ApplyLog then reads only the log's tail. Version 3 added the per-country
// counts; a version 2 snapshot still loads, with them empty until events
// fill them.
package features
