import {
	NodeApiError,
	type IDataObject,
	type IDisplayOptions,
	type IExecuteSingleFunctions,
	type IN8nHttpFullResponse,
	type INode,
	type INodeExecutionData,
	type INodeProperties,
	type JsonObject,
} from 'n8n-workflow';

export const BASE_URL = '={{$credentials.baseUrl.replace(/\\/+$/, "")}}/api/v1';

/** memrelay's error answer `{success: false, error: {code, message, details}}` as an n8n API error. */
export function memrelayError(node: INode, statusCode: number, body: unknown): NodeApiError {
	const error = ((body as IDataObject)?.error ?? {}) as IDataObject;
	const message = String(error.message ?? `memrelay answered HTTP ${statusCode}`);
	return new NodeApiError(node, (body ?? {}) as JsonObject, {
		message,
		description: error.code ? `${String(error.code)}: ${JSON.stringify(error.details ?? {})}` : undefined,
		httpCode: String(statusCode),
	});
}

/** Requests run with ignoreHttpStatusErrors: turn a 4xx/5xx answer into an error carrying memrelay's message. */
export async function raiseOnError(
	this: IExecuteSingleFunctions,
	items: INodeExecutionData[],
	response: IN8nHttpFullResponse,
): Promise<INodeExecutionData[]> {
	if (response.statusCode >= 400) throw memrelayError(this.getNode(), response.statusCode, response.body);
	return items;
}

/** memrelay answers `{success: true, data}`: every operation outputs `data` (or a list inside it). */
export function unwrap(property = 'data') {
	return {
		output: {
			postReceive: [raiseOnError, { type: 'rootProperty' as const, properties: { property } }],
		},
	};
}

/** Keeps optional body fields out of the request when they are empty. */
export const OMIT_EMPTY = '={{ $value === "" || $value === null ? undefined : $value }}';

function show(resource: string, operations: string[]): IDisplayOptions {
	return { show: { resource: [resource], operation: operations } };
}

/**
 * The ways to name a record (sent top-level; memrelay accepts them there on every endpoint):
 * entity type, email, and — under "Other Identifiers" — website, memrelay record id or a custom key.
 */
export function identifierFields(
	resource: string,
	operations: string[],
	opts: { typeRequired?: boolean; typeName?: string } = {},
): INodeProperties[] {
	return [
		{
			displayName: 'Entity Type Name or ID',
			name: 'entityType',
			type: 'options',
			typeOptions: { loadOptionsMethod: 'getEntityTypes' },
			default: 'contact',
			required: opts.typeRequired ?? false,
			description:
				'The record\'s entity type (contact, company, deal or a custom one). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			displayOptions: show(resource, operations),
			routing: { send: { type: 'body', property: opts.typeName ?? 'type', value: OMIT_EMPTY } },
		},
		{
			displayName: 'Email',
			name: 'email',
			type: 'string',
			placeholder: 'name@email.com',
			default: '',
			description: 'The contact\'s email address (any key of the record finds it)',
			displayOptions: show(resource, operations),
			routing: { send: { type: 'body', property: 'email', value: OMIT_EMPTY } },
		},
		{
			displayName: 'Other Identifiers',
			name: 'otherIdentifiers',
			type: 'collection',
			placeholder: 'Add Identifier',
			default: {},
			displayOptions: show(resource, operations),
			options: [
				{
					displayName: 'Custom Key Name',
					name: 'customKeyName',
					type: 'string',
					default: '',
					placeholder: 'hubspot_id',
					routing: { send: { type: 'body', property: 'customKeyName', value: OMIT_EMPTY } },
				},
				{
					displayName: 'Custom Key Value',
					name: 'customKeyValue',
					type: 'string',
					default: '',
					routing: { send: { type: 'body', property: 'customKeyValue', value: OMIT_EMPTY } },
				},
				{
					displayName: 'Record ID',
					name: 'recordId',
					type: 'string',
					default: '',
					placeholder: 'rec_…',
					routing: { send: { type: 'body', property: 'recordId', value: OMIT_EMPTY } },
				},
				{
					displayName: 'Website URL',
					name: 'websiteUrl',
					type: 'string',
					default: '',
					placeholder: 'https://acme.com',
					routing: { send: { type: 'body', property: 'websiteUrl', value: OMIT_EMPTY } },
				},
			],
		},
	];
}

/** Property name/value pairs with the names picked from the entity type's collections. */
export function propertyValues(resource: string, operations: string[]): INodeProperties {
	return {
		displayName: 'Properties',
		name: 'properties',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		placeholder: 'Add Property',
		default: {},
		displayOptions: show(resource, operations),
		options: [
			{
				displayName: 'Property',
				name: 'property',
				values: [
					{
						displayName: 'Property Name or ID',
						name: 'name',
						type: 'options',
						typeOptions: { loadOptionsMethod: 'getProperties', loadOptionsDependsOn: ['entityType'] },
						default: '',
						description:
							'A property of the entity type\'s collections. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
					},
					{
						displayName: 'Value',
						name: 'value',
						type: 'string',
						default: '',
						description: 'The value; JSON arrays and objects are parsed',
					},
				],
			},
		],
		routing: {
			send: {
				type: 'body',
				property: 'properties',
				value:
					'={{ Object.fromEntries(($value.property || []).filter(p => p.name).map(p => { let v = p.value; if (typeof v === "string" && /^[\\[{]/.test(v.trim())) { try { v = JSON.parse(v); } catch (e) { v = p.value; } } return [p.name, v]; })) }}',
			},
		},
	};
}

/** Provenance sent with every write, so memrelay's history says the value came from n8n. */
export function sourceField(resource: string, operations: string[], fallback = 'n8n'): INodeProperties {
	return {
		displayName: 'Source',
		name: 'source',
		type: 'string',
		default: fallback,
		description: 'Recorded as the provenance of what this step writes (e.g. hubspot, stripe, n8n)',
		displayOptions: show(resource, operations),
		routing: { send: { type: 'body', property: 'source', value: OMIT_EMPTY } },
	};
}

export { show };
