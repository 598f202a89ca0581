import type { INodeProperties } from 'n8n-workflow';
import { OMIT_EMPTY, show, unwrap } from '../shared/descriptions';

const G = 'governance';
const ID_URL = '=/guidelines/{{ encodeURIComponent($parameter.guidelineId) }}';

export const governanceOperations: INodeProperties = {
	displayName: 'Operation',
	name: 'operation',
	type: 'options',
	noDataExpression: true,
	displayOptions: { show: { resource: [G] } },
	default: 'smartGuidelines',
	options: [
		{
			name: 'Create Guideline',
			value: 'createGuideline',
			action: 'Create a guideline',
			routing: { request: { method: 'POST', url: '/guidelines' }, ...unwrap() },
		},
		{
			name: 'Delete Guideline',
			value: 'deleteGuideline',
			action: 'Delete a guideline',
			routing: { request: { method: 'DELETE', url: ID_URL }, ...unwrap() },
		},
		{
			name: 'Get Guideline',
			value: 'getGuideline',
			action: 'Get a guideline',
			routing: { request: { method: 'GET', url: ID_URL }, ...unwrap() },
		},
		{
			name: 'Get Many Guidelines',
			value: 'getGuidelines',
			action: 'Get many guidelines',
			routing: { request: { method: 'GET', url: '/guidelines' }, ...unwrap('data.guidelines') },
		},
		{
			name: 'Smart Guidelines',
			value: 'smartGuidelines',
			action: 'Get the guidelines a message needs',
			description: 'The guideline content relevant to a message (fast: embeddings + keywords; deep: LLM)',
			routing: { request: { method: 'POST', url: '/ai/smart-guidelines' }, ...unwrap() },
		},
		{
			name: 'Update Guideline',
			value: 'updateGuideline',
			action: 'Update a guideline',
			description: 'Change some fields of a guideline (a real change becomes a new version)',
			routing: { request: { method: 'PATCH', url: ID_URL }, ...unwrap() },
		},
	],
};

const guidelineBody: INodeProperties[] = [
	{
		displayName: 'Description',
		name: 'description',
		type: 'string',
		default: '',
		routing: { send: { type: 'body', property: 'description' } },
	},
	{
		displayName: 'Tags',
		name: 'tags',
		type: 'string',
		default: '',
		description: 'Comma-separated tags',
		routing: {
			send: {
				type: 'body',
				property: 'tags',
				value: '={{ String($value || "").split(",").map(t => t.trim()).filter(t => t) }}',
			},
		},
	},
	{
		displayName: 'Trigger Keywords',
		name: 'triggerKeywords',
		type: 'string',
		default: '',
		description: 'Comma-separated words that make smart guidelines pick this guideline',
		routing: {
			send: {
				type: 'body',
				property: 'triggerKeywords',
				value: '={{ String($value || "").split(",").map(t => t.trim()).filter(t => t) }}',
			},
		},
	},
];

export const governanceFields: INodeProperties[] = [
	{
		displayName: 'Message',
		name: 'message',
		type: 'string',
		typeOptions: { rows: 3 },
		required: true,
		default: '',
		description: 'The message or task the guidelines are for',
		displayOptions: show(G, ['smartGuidelines']),
		routing: { send: { type: 'body', property: 'message' } },
	},
	{
		displayName: 'Mode',
		name: 'mode',
		type: 'options',
		default: 'fast',
		options: [
			{ name: 'Fast', value: 'fast' },
			{ name: 'Deep (LLM)', value: 'deep' },
		],
		displayOptions: show(G, ['smartGuidelines']),
		routing: { send: { type: 'body', property: 'mode' } },
	},
	{
		displayName: 'Max Guidelines',
		name: 'maxGuidelines',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 20 },
		default: 5,
		displayOptions: show(G, ['smartGuidelines']),
		routing: { send: { type: 'body', property: 'maxGuidelines' } },
	},
	{
		displayName: 'Guideline Name or ID',
		name: 'guidelineId',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getGuidelines' },
		required: true,
		default: '',
		description:
			'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
		displayOptions: show(G, ['getGuideline', 'updateGuideline', 'deleteGuideline']),
	},
	{
		displayName: 'Name',
		name: 'name',
		type: 'string',
		required: true,
		default: '',
		displayOptions: show(G, ['createGuideline']),
		routing: { send: { type: 'body', property: 'name' } },
	},
	{
		displayName: 'Content',
		name: 'content',
		type: 'string',
		typeOptions: { rows: 6 },
		default: '',
		description: 'The guideline in markdown',
		displayOptions: show(G, ['createGuideline']),
		routing: { send: { type: 'body', property: 'content' } },
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: show(G, ['createGuideline']),
		options: guidelineBody,
	},
	{
		displayName: 'Update Fields',
		name: 'updateFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: show(G, ['updateGuideline']),
		options: [
			{
				displayName: 'Content',
				name: 'content',
				type: 'string',
				typeOptions: { rows: 6 },
				default: '',
				routing: { send: { type: 'body', property: 'content' } },
			},
			...guidelineBody,
			{
				displayName: 'Name',
				name: 'name',
				type: 'string',
				default: '',
				routing: { send: { type: 'body', property: 'name', value: OMIT_EMPTY } },
			},
		],
	},
	{
		displayName: 'Tag',
		name: 'tag',
		type: 'string',
		default: '',
		description: 'Only guidelines with this tag',
		displayOptions: show(G, ['getGuidelines']),
		routing: { send: { type: 'query', property: 'tag', value: OMIT_EMPTY } },
	},
];
