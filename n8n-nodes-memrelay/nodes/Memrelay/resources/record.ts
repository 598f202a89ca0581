import type { INodeProperties } from 'n8n-workflow';
import { searchEveryPage } from '../shared/paging';
import { identifierFields, OMIT_EMPTY, propertyValues, show, sourceField, unwrap } from '../shared/descriptions';

const R = 'record';
const IDENTIFIED = ['upsert', 'get', 'update', 'bulkUpdate', 'propertyHistory', 'delete', 'cancelDeletion', 'erase'];

export const recordOperations: INodeProperties = {
	displayName: 'Operation',
	name: 'operation',
	type: 'options',
	noDataExpression: true,
	displayOptions: { show: { resource: [R] } },
	default: 'upsert',
	options: [
		{
			name: 'Bulk Update',
			value: 'bulkUpdate',
			action: 'Update several properties of a record',
			description: 'Update several properties of one record atomically',
			routing: { request: { method: 'POST', url: '/memory/bulk-update' }, ...unwrap() },
		},
		{
			name: 'Cancel Deletion',
			value: 'cancelDeletion',
			action: 'Cancel the deletion of a record',
			description: 'Restore a soft-deleted record (or its deleted memories) within the retention window',
			routing: { request: { method: 'POST', url: '/memory/cancel-deletion' }, ...unwrap() },
		},
		{
			name: 'Delete',
			value: 'delete',
			action: 'Delete a record',
			description: 'Soft-delete a record: hidden at once, restorable for the retention window',
			routing: { request: { method: 'POST', url: '/memory/delete-record' }, ...unwrap() },
		},
		{
			name: 'Erase',
			value: 'erase',
			action: 'Erase a record permanently',
			description: 'GDPR erasure: immediate hard delete everywhere (needs an admin key)',
			routing: { request: { method: 'POST', url: '/memory/erase-record' }, ...unwrap() },
		},
		{
			name: 'Get',
			value: 'get',
			action: 'Get a record',
			description: 'Get a record\'s properties and memories by any of its keys',
			routing: { request: { method: 'POST', url: '/recall' }, ...unwrap() },
		},
		{
			name: 'Get Property History',
			value: 'propertyHistory',
			action: 'Get the history of a record property',
			description: 'Every write of one property (or all), newest first, with provenance',
			routing: { request: { method: 'POST', url: '/memory/property-history' }, ...unwrap('data.items') },
		},
		{
			name: 'Search',
			value: 'search',
			action: 'Search records',
			description: 'Find records by property and key conditions, following every page',
			routing: {
				request: { method: 'POST', url: '/search' },
				send: { paginate: '={{ $parameter.returnAll }}' },
				operations: { pagination: searchEveryPage },
				...unwrap('data.results'),
			},
		},
		{
			name: 'Update Property',
			value: 'update',
			action: 'Update a record property',
			description: 'Set one property (or push to / remove from a list property)',
			routing: { request: { method: 'POST', url: '/memory/update' }, ...unwrap() },
		},
		{
			name: 'Create or Update',
			value: 'upsert',
			action: 'Create or update a record',
			description: 'Create a new record, or update the current one if it already exists (upsert)',
			routing: { request: { method: 'POST', url: '/upsert' }, ...unwrap() },
		},
	],
};

export const recordFields: INodeProperties[] = [
	...identifierFields(R, IDENTIFIED, { typeRequired: true }),
	propertyValues(R, ['upsert', 'bulkUpdate']),
	sourceField(R, ['upsert', 'update', 'bulkUpdate']),
	// --- update ------------------------------------------------------------------------------------
	{
		displayName: 'Property Name or ID',
		name: 'propertyName',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getProperties', loadOptionsDependsOn: ['entityType'] },
		required: true,
		default: '',
		description:
			'The property to change. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: show(R, ['update']),
		routing: { send: { type: 'body', property: 'propertyName' } },
	},
	{
		displayName: 'Change',
		name: 'change',
		type: 'options',
		default: 'set',
		displayOptions: show(R, ['update']),
		options: [
			{ name: 'Set Value', value: 'set' },
			{ name: 'Add to List', value: 'arrayPush' },
			{ name: 'Remove From List', value: 'arrayRemove' },
		],
	},
	{
		displayName: 'Value',
		name: 'propertyValue',
		type: 'string',
		default: '',
		description: 'The new value (for lists: the item); JSON arrays and objects are parsed',
		displayOptions: show(R, ['update']),
		routing: {
			send: {
				preSend: [
					async function (this, requestOptions) {
						const change = this.getNodeParameter('change', 'set') as string;
						let value: unknown = this.getNodeParameter('propertyValue', '');
						if (typeof value === 'string' && /^[[{]/.test(value.trim())) {
							try {
								value = JSON.parse(value);
							} catch {
								// not JSON: keep the text as it is
							}
						}
						const body = (requestOptions.body ?? {}) as Record<string, unknown>;
						if (change === 'set') body.propertyValue = value;
						else body[change] = { items: Array.isArray(value) ? value : [value] };
						requestOptions.body = body;
						return requestOptions;
					},
				],
			},
		},
	},
	// --- history -----------------------------------------------------------------------------------
	{
		displayName: 'Property Name or ID',
		name: 'historyProperty',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getProperties', loadOptionsDependsOn: ['entityType'] },
		default: '',
		description:
			'Only this property (empty: every property). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: show(R, ['propertyHistory']),
		routing: { send: { type: 'body', property: 'propertyName', value: OMIT_EMPTY } },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 50,
		description: 'Max number of results to return',
		displayOptions: show(R, ['propertyHistory']),
		routing: { send: { type: 'body', property: 'pageSize' } },
	},
	// --- search ------------------------------------------------------------------------------------
	{
		displayName: 'Entity Type Name or ID',
		name: 'searchType',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getEntityTypes' },
		default: 'contact',
		description:
			'Records of this type (empty: every type). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: show(R, ['search']),
		routing: { send: { type: 'body', property: 'type', value: OMIT_EMPTY } },
	},
	{
		displayName: 'Conditions',
		name: 'conditions',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		placeholder: 'Add Condition',
		default: {},
		displayOptions: show(R, ['search']),
		options: [
			{
				displayName: 'Condition',
				name: 'condition',
				values: [
					{
						displayName: 'Property or Key',
						name: 'property',
						type: 'string',
						default: '',
						placeholder: 'lifecycle_stage',
						description: 'A property name, or a key such as email or website_url',
					},
					{
						displayName: 'Operator',
						name: 'operator',
						type: 'options',
						default: 'EQ',
						options: [
							{ name: 'Contains', value: 'CONTAINS' },
							{ name: 'Equals', value: 'EQ' },
							{ name: 'Greater Than', value: 'GT' },
							{ name: 'Greater Than or Equal', value: 'GTE' },
							{ name: 'In (Comma-Separated)', value: 'IN' },
							{ name: 'Is Not Set', value: 'IS_NOT_SET' },
							{ name: 'Is Set', value: 'IS_SET' },
							{ name: 'Less Than', value: 'LT' },
							{ name: 'Less Than or Equal', value: 'LTE' },
							{ name: 'Not Equals', value: 'NEQ' },
						],
					},
					{
						displayName: 'Value',
						name: 'value',
						type: 'string',
						default: '',
					},
				],
			},
		],
		routing: {
			send: {
				type: 'body',
				property: 'groups',
				value:
					'={{ ($value.condition || []).length ? [{ logic: $parameter.logic, conditions: $value.condition.map(c => ({ property: c.property, operator: c.operator, value: c.operator === "IN" ? String(c.value).split(",").map(v => v.trim()) : (c.operator.startsWith("IS_") ? null : c.value) })) }] : [] }}',
			},
		},
	},
	{
		displayName: 'Combine Conditions',
		name: 'logic',
		type: 'options',
		default: 'AND',
		options: [
			{ name: 'All Must Match (AND)', value: 'AND' },
			{ name: 'Any May Match (OR)', value: 'OR' },
		],
		displayOptions: show(R, ['search']),
	},
	{
		displayName: 'Return All',
		name: 'returnAll',
		type: 'boolean',
		default: true,
		description: 'Whether to return all results or only up to a given limit',
		displayOptions: show(R, ['search']),
	},
	{
		displayName: 'Page Size',
		name: 'pageSize',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 500 },
		default: 100,
		description: 'Records per request (memrelay pages the answer; every page is fetched when Return All is on)',
		displayOptions: { show: { resource: [R], operation: ['search'], returnAll: [true] } },
		routing: { send: { type: 'body', property: 'pageSize' } },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 500 },
		default: 50,
		description: 'Max number of results to return',
		displayOptions: { show: { resource: [R], operation: ['search'], returnAll: [false] } },
		routing: { send: { type: 'body', property: 'pageSize' } },
	},
	{
		displayName: 'Search Identifiers',
		name: 'searchIdentifiers',
		type: 'collection',
		placeholder: 'Add Identifier',
		default: {},
		displayOptions: show(R, ['search']),
		options: [
			{
				displayName: 'Email',
				name: 'email',
				type: 'string',
				placeholder: 'name@email.com',
				default: '',
				routing: { send: { type: 'body', property: 'email', value: OMIT_EMPTY } },
			},
			{
				displayName: 'Website URL',
				name: 'websiteUrl',
				type: 'string',
				default: '',
				routing: { send: { type: 'body', property: 'websiteUrl', value: OMIT_EMPTY } },
			},
		],
	},
];
