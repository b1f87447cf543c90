// faiss_peer times FAISS on TEXMEX files with the definitions reelrank's
// `bench ann` uses, so that both engines can be measured in one run:
//
//   recall@k  |returned top-k ∩ exact top-k| / k, averaged over the queries
//   QPS 1t    one query per call on one thread, after a warm-up
//   p50, p99  of those single-query calls, in microseconds
//   QPS batch all the queries in one call on --threads threads
//   bytes     the serialised index divided by the number of vectors
//
// Usage:
//   faiss_peer --base B.fvecs --query Q.fvecs --gt G.ivecs --metric ip|l2 \
//     --factory IVF2048,PQ64x4fs,RFlat --k 1000 --nprobe 256,512 --kfactor 4,8 \
//     [--queries N] [--warmup 200] [--threads 2] [--index FILE] [--no-batch]
//
// --index FILE reads the index from FILE when it exists and writes it there
// after building otherwise, so a sweep over search settings builds once.
// One JSON object per (nprobe, kfactor) goes to standard output, with the
// field names of `reelrank bench ann --json` (refine is the k factor), so
// that `reelrank bench import --engine faiss` reads it as it is.
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#ifndef FAISS_VERSION_STRING
#define FAISS_VERSION_STRING "unknown"
#endif
#ifndef FAISS_COMMIT
#define FAISS_COMMIT "unknown"
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Vecs holds n rows of d values of a .fvecs or .ivecs file.
template <typename T>
struct Vecs {
    size_t n = 0, d = 0;
    std::vector<T> v;
    const T* row(size_t i) const { return v.data() + i * d; }
};

// read_vecs reads a TEXMEX file: per row an int32 dimension, then d values
// of 4 bytes. Every row must have the first row's dimension.
template <typename T>
Vecs<T> read_vecs(const std::string& path, size_t limit) {
    static_assert(sizeof(T) == 4);
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("open " + path);
    int32_t d32 = 0;
    if (!f.read(reinterpret_cast<char*>(&d32), 4) || d32 <= 0 || d32 > (1 << 20))
        throw std::runtime_error(path + ": bad first dimension");
    f.seekg(0, std::ios::end);
    size_t size = size_t(f.tellg());
    size_t rowb = 4 + size_t(d32) * 4;
    if (size % rowb != 0)
        throw std::runtime_error(path + ": size is not a whole number of rows");
    Vecs<T> out;
    out.d = size_t(d32);
    out.n = size / rowb;
    if (limit > 0 && limit < out.n) out.n = limit;
    out.v.resize(out.n * out.d);
    f.seekg(0);
    std::vector<char> buf(rowb);
    for (size_t i = 0; i < out.n; i++) {
        if (!f.read(buf.data(), rowb)) throw std::runtime_error(path + ": short read");
        int32_t di;
        std::memcpy(&di, buf.data(), 4);
        if (size_t(di) != out.d)
            throw std::runtime_error(path + ": row " + std::to_string(i) + " has another dimension");
        std::memcpy(out.v.data() + i * out.d, buf.data() + 4, out.d * 4);
    }
    return out;
}

std::vector<int> parse_ints(const std::string& s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string tok;
    while (std::getline(ss, tok, ','))
        if (!tok.empty()) out.push_back(std::stoi(tok));
    if (out.empty()) throw std::runtime_error("empty list: " + s);
    return out;
}

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            if (p != std::string::npos) {
                auto s = line.substr(p + 1);
                s.erase(0, s.find_first_not_of(' '));
                return s;
            }
        }
    }
    return "unknown";
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o;
}

// recall is the mean over queries of |got[:k] ∩ truth[:k]| / k.
double recall(const std::vector<faiss::idx_t>& got, const Vecs<int32_t>& gt, size_t nq, size_t k) {
    double sum = 0;
    std::unordered_set<int64_t> truth;
    for (size_t i = 0; i < nq; i++) {
        truth.clear();
        for (size_t j = 0; j < k && j < gt.d; j++) truth.insert(gt.row(i)[j]);
        size_t hit = 0;
        for (size_t j = 0; j < k; j++)
            if (truth.count(got[i * gt.d + j]) != 0) hit++;
        sum += double(hit) / double(k);
    }
    return sum / double(nq);
}

}  // namespace

int main(int argc, char** argv) {
    std::string base, query, gtpath, metric = "ip", factory, index_path, nprobes = "16", kfactors = "1";
    size_t k = 10, nq_limit = 0, warmup = 200;
    int threads = 2;
    bool batch = true;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--base") base = val();
        else if (a == "--query") query = val();
        else if (a == "--gt") gtpath = val();
        else if (a == "--metric") metric = val();
        else if (a == "--factory") factory = val();
        else if (a == "--index") index_path = val();
        else if (a == "--nprobe") nprobes = val();
        else if (a == "--kfactor") kfactors = val();
        else if (a == "--k") k = std::stoul(val());
        else if (a == "--queries") nq_limit = std::stoul(val());
        else if (a == "--warmup") warmup = std::stoul(val());
        else if (a == "--threads") threads = std::stoi(val());
        else if (a == "--no-batch") batch = false;
        else {
            std::fprintf(stderr, "faiss_peer: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (query.empty() || gtpath.empty() || (base.empty() && index_path.empty()) || factory.empty()) {
        std::fprintf(stderr, "faiss_peer: --query, --gt, --factory and --base (or an existing --index) are required\n");
        return 2;
    }
    if (metric != "ip" && metric != "l2") {
        std::fprintf(stderr, "faiss_peer: --metric ip or l2\n");
        return 2;
    }
    try {
        auto q = read_vecs<float>(query, nq_limit);
        auto gt = read_vecs<int32_t>(gtpath, nq_limit);
        if (gt.n < q.n) throw std::runtime_error("fewer ground-truth rows than queries");
        if (gt.d < k) throw std::runtime_error("ground truth has fewer than k ids a query");
        const size_t nq = q.n;

        std::unique_ptr<faiss::Index> index;
        double build_s = -1;
        bool have_file = false;
        if (!index_path.empty()) {
            std::ifstream probe(index_path);
            have_file = probe.good();
        }
        if (have_file) {
            index.reset(faiss::read_index(index_path.c_str()));
        } else {
            auto b = read_vecs<float>(base, 0);
            if (b.d != q.d) throw std::runtime_error("base and queries differ in dimension");
            omp_set_num_threads(threads);
            auto t0 = Clock::now();
            index.reset(faiss::index_factory(int(b.d), factory.c_str(),
                                             metric == "ip" ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2));
            index->train(faiss::idx_t(b.n), b.v.data());
            index->add(faiss::idx_t(b.n), b.v.data());
            build_s = seconds_since(t0);
            if (!index_path.empty()) faiss::write_index(index.get(), index_path.c_str());
        }
        if (size_t(index->d) != q.d) throw std::runtime_error("index and queries differ in dimension");
        faiss::VectorIOWriter w;
        faiss::write_index(index.get(), &w);
        const double bytes_per_vector = double(w.data.size()) / double(index->ntotal);

        auto* refine = dynamic_cast<faiss::IndexRefine*>(index.get());
        faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
        if (ivf == nullptr) throw std::runtime_error("the factory string names no IVF index");
        const std::string cpu = cpu_model();

        for (int np : parse_ints(nprobes)) {
            for (int kf : parse_ints(kfactors)) {
                faiss::SearchParametersIVF ivfp;
                ivfp.nprobe = size_t(np);
                faiss::IndexRefineSearchParameters rp;
                rp.k_factor = float(kf);
                rp.base_index_params = &ivfp;
                const faiss::SearchParameters* params = refine ? static_cast<faiss::SearchParameters*>(&rp)
                                                               : static_cast<faiss::SearchParameters*>(&ivfp);
                std::vector<float> dist(k);
                std::vector<faiss::idx_t> got(nq * gt.d, -1);

                omp_set_num_threads(1);
                for (size_t i = 0; i < std::min(warmup, nq); i++)
                    index->search(1, q.row(i), faiss::idx_t(k), dist.data(), got.data() + i * gt.d, params);
                std::vector<double> lat(nq);
                auto t0 = Clock::now();
                for (size_t i = 0; i < nq; i++) {
                    auto s = Clock::now();
                    index->search(1, q.row(i), faiss::idx_t(k), dist.data(), got.data() + i * gt.d, params);
                    lat[i] = seconds_since(s) * 1e6;
                }
                const double qps1 = double(nq) / seconds_since(t0);
                const double r = recall(got, gt, nq, k);
                const double r10 = recall(got, gt, nq, std::min<size_t>(10, k));
                std::sort(lat.begin(), lat.end());
                auto pct = [&](double p) { return lat[std::min(nq - 1, size_t(p * double(nq)))]; };

                double qpsb = 0;
                if (batch) {
                    omp_set_num_threads(threads);
                    std::vector<float> bd(nq * k);
                    std::vector<faiss::idx_t> bi(nq * k);
                    auto tb = Clock::now();
                    index->search(faiss::idx_t(nq), q.v.data(), faiss::idx_t(k), bd.data(), bi.data(), params);
                    qpsb = double(nq) / seconds_since(tb);
                }
                std::printf(
                    "{\"engine\":\"faiss\",\"version\":\"%s\",\"commit\":\"%s\",\"cpu\":\"%s\","
                    "\"factory\":\"%s\",\"lists\":%zu,\"nprobe\":%d,\"refine\":%d,\"k\":%zu,\"queries\":%zu,"
                    "\"vectors\":%lld,\"build_s\":%.2f,\"bytes_per_vector\":%.1f,\"recall@k\":%.4f,\"recall@10\":%.4f,"
                    "\"qps_1thread\":%.1f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"qps_batch\":%.1f,\"threads\":%d}\n",
                    FAISS_VERSION_STRING, FAISS_COMMIT, json_escape(cpu).c_str(), json_escape(factory).c_str(),
                    size_t(ivf->nlist), np, kf, k, nq, (long long)index->ntotal, build_s, bytes_per_vector, r, r10,
                    qps1, pct(0.50), pct(0.99), qpsb, threads);
                std::fflush(stdout);
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "faiss_peer: %s\n", e.what());
        return 1;
    }
    return 0;
}
