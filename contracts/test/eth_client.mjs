// An Ethereum client drives an Ordo testnet through its JSON-RPC with ethers.js, unchanged:
// the development accounts derived from the standard test mnemonic, an ERC-20 deployed and
// called (events parsed, a revert decoded), a native transfer in ether units, nonces.
//
// Usage: node test/eth_client.mjs RPC_URL CHAIN_ID DEV_ACCOUNTS_JSON
// (DEV_ACCOUNTS_JSON: the `dev_accounts` of `ordo testnet up --json`). Exits non-zero with
// the reason on the first check that fails; prints one JSON line of what it did otherwise.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ethers } from "ethers";

const [url, chainIdText, devJson] = process.argv.slice(2);
if (!url || !chainIdText || !devJson) {
  console.error("usage: node test/eth_client.mjs RPC_URL CHAIN_ID DEV_ACCOUNTS_JSON");
  process.exit(2);
}
const MNEMONIC = "test test test test test test test test test test test junk";
const here = dirname(fileURLToPath(import.meta.url));
const token = JSON.parse(readFileSync(join(here, "..", "build", "Token.json"), "utf8"));

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100 });
const network = await provider.getNetwork();
check(network.chainId === BigInt(chainIdText), `chain id ${network.chainId}, expected ${chainIdText}`);

// The accounts Ordo funds are the mnemonic's, key for key.
const dev = JSON.parse(devJson);
check(dev.length === 10, `${dev.length} development accounts`);
const wallets = dev.map((account, i) => {
  const derived = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
  check(derived.address.toLowerCase() === account.address.toLowerCase(), `account ${i}: ${derived.address} vs ${account.address}`);
  check(derived.privateKey === account.private_key, `account ${i}'s private key`);
  return derived.connect(provider);
});
const [alice, bob, carol] = wallets;
const start = await provider.getBalance(carol.address);
check(start === ethers.parseEther("10000"), `carol holds ${start}`);

// An ERC-20: deployment (gas estimated for a creation), a transfer with its event, a read.
const factory = new ethers.ContractFactory(token.abi, token.bytecode, alice);
const erc20 = await factory.deploy("Ordo", "ORD", 1_000_000n);
await erc20.waitForDeployment();
const address = await erc20.getAddress();
check((await provider.getCode(address)).length > 2, "the token has code");
const sent = await erc20.transfer(bob.address, 250n);
const receipt = await sent.wait();
check(receipt.status === 1, `transfer status ${receipt.status}`);
const event = erc20.interface.parseLog(receipt.logs[0]);
check(event.name === "Transfer" && event.args.value === 250n, "a Transfer event of 250");
check((await erc20.balanceOf(bob.address)) === 250n, "bob holds 250 tokens");

// A transfer of more than bob holds reverts: the reason comes back through eth_estimateGas.
let reason = null;
try {
  await erc20.connect(bob).transfer(alice.address, 10n ** 30n);
} catch (e) {
  reason = e.reason ?? e.shortMessage;
}
check(reason === "insufficient balance", `revert reason ${reason}`);

// Native coin in ether units (more than a 64-bit integer holds).
const pay = await alice.sendTransaction({ to: carol.address, value: ethers.parseEther("1.5") });
const paid = await pay.wait();
check(paid.status === 1, "the native transfer succeeded");
check((await provider.getBalance(carol.address)) === start + ethers.parseEther("1.5"), "carol received 1.5");
const fetched = await provider.getTransaction(pay.hash);
check(fetched.from === alice.address && fetched.value === ethers.parseEther("1.5"), "the transaction reads back");

// The token's Transfer events to bob, by eth_getLogs over the blocks since its deployment.
const deployedAt = (await erc20.deploymentTransaction().wait()).blockNumber;
const toBob = await erc20.queryFilter(erc20.filters.Transfer(null, bob.address), deployedAt, paid.blockNumber);
check(toBob.length === 1 && toBob[0].args.value === 250n && toBob[0].transactionHash === sent.hash, `Transfer logs to bob: ${toBob.length}`);
check(toBob[0].index === receipt.logs[0].index, `log index ${toBob[0].index} by eth_getLogs, ${receipt.logs[0].index} in the receipt`);
check(receipt.cumulativeGasUsed >= receipt.gasUsed, "cumulative gas covers the transaction's own");
const minted = await erc20.queryFilter(erc20.filters.Transfer(ethers.ZeroAddress), deployedAt, paid.blockNumber);
check(minted.length === 1 && minted[0].args.value === 1_000_000n, "the mint's Transfer log");

// The errors wallets handle: a nonce already used, and a sender without funds (caught by
// the gas estimate, and at admission when the gas limit is given).
let stale = null;
try {
  await alice.sendTransaction({ to: carol.address, value: 1n, nonce: 0 });
} catch (e) {
  stale = e.code;
}
check(stale === "NONCE_EXPIRED", `a used nonce gave ${stale}`);
const pauper = ethers.Wallet.createRandom().connect(provider);
for (const gasLimit of [undefined, 21_000n]) {
  let poor = null;
  try {
    await pauper.sendTransaction({ to: carol.address, value: 1n, gasLimit });
  } catch (e) {
    poor = e.code;
  }
  check(poor === "INSUFFICIENT_FUNDS", `a sender without funds (gas limit ${gasLimit}) gave ${poor}`);
}

// Three transactions from alice: deploy, transfer, payment.
check((await provider.getTransactionCount(alice.address, "latest")) === 3, "alice's nonce is 3");
const block = await provider.getBlock(paid.blockNumber);
check(block.transactions.includes(pay.hash), "the payment's block lists it");
// By hash (eth_getBlockByHash), the deployment's block, the oldest of the three.
const deployed = await provider.getTransactionReceipt(erc20.deploymentTransaction().hash);
const byHash = await provider.getBlock(deployed.blockHash);
check(byHash !== null && byHash.number === deployed.blockNumber, `block ${deployed.blockHash} by hash is ${byHash?.number}, not ${deployed.blockNumber}`);
check(byHash.hash === deployed.blockHash, "a block found by hash has that hash");

console.log(JSON.stringify({
  token: address,
  deploy: erc20.deploymentTransaction().hash,
  transfer: sent.hash,
  payment: pay.hash,
  block: paid.blockNumber,
  carol: carol.address,
}));
