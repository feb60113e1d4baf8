// `npm run example:serve`: the same app, kept running for you to try with curl.
import { startExample } from './setup';

const port = Number(process.env.PORT ?? 3000);
startExample({ port }).then((example) => {
  const u = example.baseUrl;
  process.stdout.write(
    [
      `store example listening on ${u} — database: ${example.database.description}`,
      '',
      `curl -s ${u}/products -H 'X-Store: acme'`,
      `curl -s ${u}/products -H 'X-Store: globex'`,
      `curl -s ${u}/products/3 -H 'X-Store: acme'            # 404: id 3 is globex's`,
      `curl -s ${u}/products -H 'X-Store: acme' -H 'content-type: application/json' -d '{"name":"Tornado kit","price":40}'`,
      `curl -s ${u}/products -H 'X-Store: acme' -H 'content-type: application/json' -d '{"name":"Heist","price":1,"storeId":2}'   # 409`,
      `curl -s ${u}/stats -H 'X-Store: globex'`,
      `curl -s ${u}/products                                  # 401: strict mode, no store`,
      '',
      'Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  const stop = () => example.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
