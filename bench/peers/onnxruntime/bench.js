const ort = require('onnxruntime-node');
(async () => {
  const s = await ort.InferenceSession.create('ranker.onnx', {intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all'});
  const IN = 386, n = 1000;
  const x = new Float32Array(n * IN).map(() => Math.random());
  const feeds = {x: new ort.Tensor('float32', x, [n, IN])};
  for (let i = 0; i < 200; i++) await s.run(feeds);
  const t = [];
  const end = Date.now() + 10000;
  while (Date.now() < end) { const a = process.hrtime.bigint(); await s.run(feeds); t.push(Number(process.hrtime.bigint() - a) / 1e6); }
  t.sort((a, b) => a - b);
  const mean = t.reduce((a, b) => a + b) / t.length;
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}: ${t.length} runs, mean ${mean.toFixed(3)} ms, p50 ${t[Math.floor(t.length*0.5)].toFixed(3)} ms, p99 ${t[Math.floor(t.length*0.99)].toFixed(3)} ms`);
})();
