import { createHmac, timingSafeEqual } from 'crypto';
import {
	NodeApiError,
	NodeConnectionTypes,
	type IDataObject,
	type IHookFunctions,
	type INodeType,
	type INodeTypeDescription,
	type IWebhookFunctions,
	type IWebhookResponseData,
	type JsonObject,
} from 'n8n-workflow';
import { memrelayRequest } from '../Memrelay/shared/transport';
import { getEntityTypes } from '../Memrelay/shared/loadOptions';

/** Standard Webhooks: a delivery older or newer than this is refused (replay protection). */
const TOLERANCE_S = 5 * 60;

/**
 * Checks `webhook-signature` (space-separated `v1,<base64>`; one per live secret during a rotation)
 * against HMAC-SHA256(`<webhook-id>.<webhook-timestamp>.<raw body>`) keyed with the base64-decoded
 * secret after its `whsec_` prefix. Returns why a delivery is refused, or null when it verifies.
 */
export function verifyStandardWebhook(
	secret: string,
	headers: Record<string, string | string[] | undefined>,
	body: Buffer,
	now: number = Math.floor(Date.now() / 1000),
): string | null {
	const header = (name: string) => {
		const value = headers[name];
		return Array.isArray(value) ? value[0] : value;
	};
	const id = header('webhook-id');
	const timestamp = header('webhook-timestamp');
	const signatures = header('webhook-signature');
	if (!id || !timestamp || !signatures) return 'missing webhook-id, webhook-timestamp or webhook-signature';
	const ts = Number(timestamp);
	if (!Number.isInteger(ts) || Math.abs(now - ts) > TOLERANCE_S) return 'timestamp outside the tolerance';
	const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
	const expected = createHmac('sha256', key)
		.update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
		.digest();
	for (const candidate of signatures.split(' ')) {
		const [version, signature] = candidate.split(',', 2);
		if (version !== 'v1' || !signature) continue;
		const given = Buffer.from(signature, 'base64');
		if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
	}
	return 'no signature matches';
}

export class MemrelayTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'memrelay Trigger',
		name: 'memrelayTrigger',
		icon: { light: 'file:../../icons/memrelay.svg', dark: 'file:../../icons/memrelay.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["event"]}}',
		description: 'Starts the workflow when memrelay emits an event (signed REST-hook deliveries)',
		defaults: {
			name: 'memrelay Trigger',
		},
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'memrelayApi', required: true }],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName:
					'memrelay must be able to reach this n8n: a private address (http://n8n:5678, 10.x) needs an org admin to allowlist it (PUT /api/v1/webhooks/allowlist)',
				name: 'notice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'Event',
				name: 'event',
				type: 'options',
				required: true,
				default: 'record.created',
				options: [
					{ name: 'Batch Completed', value: 'batch.completed', description: 'A batch memorize run finished' },
					{ name: 'Collection Updated', value: 'collection.updated' },
					{ name: 'Event Failed', value: 'event.failed', description: 'An inbound webhook event failed' },
					{ name: 'Event Processed', value: 'event.processed', description: 'An inbound webhook event was processed' },
					{ name: 'Generation Completed', value: 'generation.completed' },
					{ name: 'Memory Deleted', value: 'memory.deleted' },
					{ name: 'Memory Updated', value: 'memory.updated' },
					{
						name: 'Properties Bulk Updated',
						value: 'memory.properties.bulk_updated',
						description: 'Several properties of one record changed in one write',
					},
					{
						name: 'Property Updated',
						value: 'memory.property.updated',
						description: 'A property of a record changed',
					},
					{ name: 'Record Created', value: 'record.created' },
					{ name: 'Record Deleted', value: 'memory.record.deleted' },
					{ name: 'Record Deletion Cancelled', value: 'memory.record.deletion_cancelled' },
					{ name: 'Record Erased', value: 'memory.record.erased' },
				],
			},
			{
				displayName: 'Options',
				name: 'options',
				type: 'collection',
				placeholder: 'Add Option',
				default: {},
				options: [
					{
						displayName: 'Only Entity Type Name or ID',
						name: 'entityType',
						type: 'options',
						typeOptions: { loadOptionsMethod: 'getEntityTypes' },
						default: '',
						description:
							'Drop deliveries about records of other types. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
					},
					{
						displayName: 'Only Property',
						name: 'property',
						type: 'string',
						default: '',
						description: 'For property events: drop deliveries that do not change this property',
					},
				],
			},
		],
	};

	methods = {
		loadOptions: { getEntityTypes },
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const staticData = this.getWorkflowStaticData('node');
				if (!staticData.hookId) return false;
				try {
					const hook = (await memrelayRequest.call(
						this,
						'GET',
						`/webhooks/${encodeURIComponent(String(staticData.hookId))}`,
					)) as IDataObject;
					const event = this.getNodeParameter('event') as string;
					const types = (hook.eventTypes as string[]) ?? [];
					if (hook.url === this.getNodeWebhookUrl('default') && types.includes(event) && hook.active) {
						return true;
					}
					await memrelayRequest.call(this, 'DELETE', `/hooks/${encodeURIComponent(String(hook.id))}`);
				} catch (error) {
					if ((error as JsonObject).httpCode !== '404') {
						throw new NodeApiError(this.getNode(), error as JsonObject);
					}
				}
				delete staticData.hookId;
				delete staticData.secret;
				return false;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				const targetUrl = this.getNodeWebhookUrl('default') as string;
				const event = this.getNodeParameter('event') as string;
				const answer = (await memrelayRequest.call(this, 'POST', '/hooks', {
					target_url: targetUrl,
					targetUrl,
					event,
				})) as IDataObject;
				if (!answer?.id) {
					throw new NodeApiError(this.getNode(), answer as JsonObject, {
						message: 'memrelay did not answer a subscription id',
					});
				}
				const staticData = this.getWorkflowStaticData('node');
				staticData.hookId = answer.id;
				if (answer.secret) staticData.secret = answer.secret;
				else delete staticData.secret;
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				const staticData = this.getWorkflowStaticData('node');
				if (staticData.hookId) {
					try {
						await memrelayRequest.call(
							this,
							'DELETE',
							`/hooks/${encodeURIComponent(String(staticData.hookId))}`,
						);
					} catch (error) {
						if ((error as JsonObject).httpCode !== '404') return false;
					}
				}
				delete staticData.hookId;
				delete staticData.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const req = this.getRequestObject();
		const res = this.getResponseObject();
		const secret = this.getWorkflowStaticData('node').secret as string | undefined;
		if (secret) {
			const raw = (req as unknown as { rawBody?: Buffer }).rawBody ?? Buffer.from(JSON.stringify(req.body));
			const problem = verifyStandardWebhook(secret, req.headers, raw);
			if (problem) {
				res.status(401).json({ error: `invalid memrelay signature: ${problem}` });
				return { noWebhookResponse: true };
			}
		}
		const body = this.getBodyData() as IDataObject;
		const options = this.getNodeParameter('options', {}) as IDataObject;
		const type = String(body.entityType ?? body.type ?? '').toLowerCase();
		if (options.entityType && type && type !== String(options.entityType).toLowerCase()) {
			return { webhookResponse: { status: 'ignored' } };
		}
		if (options.property) {
			const changed = new Set<string>();
			if (body.propertyName) changed.add(String(body.propertyName));
			for (const change of (body.changes as IDataObject[]) ?? []) changed.add(String(change.propertyName));
			for (const name of Object.keys((body.properties as IDataObject) ?? {})) changed.add(name);
			if (!changed.has(String(options.property))) return { webhookResponse: { status: 'ignored' } };
		}
		return { workflowData: [this.helpers.returnJsonArray(body)] };
	}
}
