// Child process of the atomic-write crash test: saves one large tensor to argv[2]
// (argv[3] megabytes) with metrics { generation: 2 }; the test kills it mid-write.
import { full, initBackend, linger } from '../../../src/engine/index';

void (async () => {
  await initBackend();
  const [file, megabytes] = process.argv.slice(2);
  const big = full([Number(megabytes) * 262144], 0.5);
  await linger.save({ big }, file, { metrics: { generation: 2 } });
})();
